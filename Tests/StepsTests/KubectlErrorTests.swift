@testable import App
import Foundation
@testable import Kube
import Testing

/// Which failed kubectl calls the K3s steps retry: the API's transient errors, never an answer about the request.
@Suite struct KubectlErrorTests {
    @Test func aRefusedConnectionALeaderChangeAndTimeoutsAreTransientNotFoundAndValidationErrorsAreNot() {
        for transient in ["The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?",
                          "Error from server: etcdserver: leader changed",
                          "Error from server: etcdserver: request timed out",
                          "Unable to connect to the server: net/http: TLS handshake timeout",
                          "Error from server (ServiceUnavailable): the server is currently unable to handle the request",
                          "Error from server (Timeout): the server was unable to return a response in the time allotted"] {
            #expect(KubectlError(stderr: transient) == .transient, "\(transient)")
        }
        for permanent in ["Error from server (NotFound): helmcharts.helm.cattle.io \"loki\" not found",
                          "The Deployment \"producer\" is invalid: spec.template.spec.containers[0].image: Required value",
                          "Error from server (Invalid): error when creating \"x.json\": admission webhook timed out: i/o timeout",
                          "Error from server (Forbidden): pods is forbidden",
                          "error: the server doesn't have a resource type \"helmcharts\"",
                          ""] {
            #expect(KubectlError(stderr: permanent) == .permanent, "\(permanent)")
        }
    }
}
