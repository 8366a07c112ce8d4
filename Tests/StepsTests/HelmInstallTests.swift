@testable import App
import Foundation
@testable import Kube
import Testing

/// How the monitoring step judges one HelmChart from the chart, its helm-install Job and the Job's pods.
@Suite struct HelmInstallTests {
    static var chart: [String: Any] { ["metadata": ["name": "loki", "namespace": "kube-system"],
                                       "spec": ["chart": "loki", "version": "18.13.1", "backOffLimit": 3]] }

    static func job(uid: String = "u1", status: [String: Any]) -> [String: Any] {
        ["metadata": ["name": "helm-install-loki", "namespace": "kube-system", "uid": uid], "status": status]
    }

    static func pod(job uid: String = "u1", container: [String: Any], phase: String = "Running") -> [String: Any] {
        ["metadata": ["name": "helm-install-loki-abcde", "namespace": "kube-system",
                      "ownerReferences": [["kind": "Job", "name": "helm-install-loki", "uid": uid]]],
         "status": ["phase": phase, "containerStatuses": [container]]]
    }

    @Test func aCompleteJobIsInstalledARunningOnePendsAndTheOneAChangedSpecReplacesDoesNotCount() {
        let complete = Self.job(status: ["succeeded": 1, "conditions": [["type": "Complete", "status": "True"]]])
        #expect(HelmInstall.judge(chart: Self.chart, job: complete, pods: [], replacedJob: nil) == .installed)
        #expect(HelmInstall.judge(chart: Self.chart, job: complete, pods: [], replacedJob: "u1")
                == .pending("waiting for the Helm controller to replace job helm-install-loki (the chart changed)"))
        #expect(HelmInstall.judge(chart: Self.chart, job: complete, pods: [], replacedJob: "u0") == .installed)
        let running = Self.job(status: ["active": 1])
        let pod = Self.pod(container: ["name": "helm", "restartCount": 0, "state": ["running": [:]]])
        #expect(HelmInstall.judge(chart: Self.chart, job: running, pods: [pod], replacedJob: nil) == .pending("job helm-install-loki running (1 active pod)"))
        #expect(HelmInstall.judge(chart: Self.chart, job: nil, pods: [], replacedJob: nil) == .pending("job helm-install-loki not created yet"))
        #expect(HelmInstall.judge(chart: nil as KubeHelmChart?, job: nil, pods: [], replacedJob: nil) == .pending("the HelmChart does not exist yet"))
    }

    @Test func aCompleteJobsFailedTriesAreItsPodsRestartsAndAnotherJobsPodsDoNotCount() {
        let complete = Self.job(status: ["succeeded": 1, "conditions": [["type": "Complete", "status": "True"]]])
        let retried: [String: Any] = ["name": "helm", "restartCount": 1, "lastState": ["terminated": ["exitCode": 1, "reason": "Error"]],
                                      "state": ["terminated": ["exitCode": 0, "reason": "Completed"]]]
        #expect(HelmInstall.restarts([Self.pod(container: retried, phase: "Succeeded")], of: complete) == 1)
        #expect(HelmInstall.restarts([Self.pod(job: "u0", container: retried)], of: complete) == 0, "the old Job's pod")
        #expect(HelmInstall.restarts([Self.pod(container: ["name": "helm", "restartCount": 0])], of: complete) == 0)
    }

    @Test func aPodInErrorIsARetryUnderWayAndOnlyAFailedJobOrHelmChartFailsTheInstall() {
        let running = Self.job(status: ["active": 1])
        let container: [String: Any] = ["name": "helm", "restartCount": 2, "lastState": ["terminated": ["exitCode": 1, "reason": "Error"]],
                                        "state": ["waiting": ["reason": "CrashLoopBackOff", "message": "back-off 10s"]]]
        let crashing = Self.pod(container: container)
        #expect(HelmInstall.judge(chart: Self.chart, job: running, pods: [crashing], replacedJob: nil)
                == .pending("job helm-install-loki retrying after an error (the Helm controller retries up to the HelmChart's backOffLimit): "
                            + "pod kube-system/helm-install-loki-abcde: Error, exit code 1, restarts 2"))
        // The controller's next try runs, then completes: the earlier error is history.
        let retried: [String: Any] = ["name": "helm", "restartCount": 1, "lastState": ["terminated": ["exitCode": 1, "reason": "Error"]], "state": ["running": [:]]]
        #expect(HelmInstall.judge(chart: Self.chart, job: Self.job(status: ["succeeded": 1, "conditions": [["type": "Complete", "status": "True"]]]),
                                  pods: [Self.pod(container: retried)], replacedJob: nil) == .installed)
        let failedWithPod = Self.job(status: ["failed": 1, "conditions": [["type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                                           "message": "Job has reached the specified backoff limit"]]])
        #expect(HelmInstall.judge(chart: Self.chart, job: failedWithPod, pods: [crashing], replacedJob: nil)
                == .failed("job helm-install-loki failed (BackoffLimitExceeded: Job has reached the specified backoff limit); "
                           + "pod kube-system/helm-install-loki-abcde: Error, exit code 1, restarts 2"))
        // The old Job's pod (another owner uid) says nothing about this Job.
        #expect(HelmInstall.judge(chart: Self.chart, job: running, pods: [Self.pod(job: "u0", container: container)],
                                  replacedJob: nil) == .pending("job helm-install-loki running (1 active pod)"))
        let failedJob = Self.job(status: ["failed": 1, "conditions": [["type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                                       "message": "Job has reached the specified backoff limit"]]])
        #expect(HelmInstall.judge(chart: Self.chart, job: failedJob, pods: [], replacedJob: nil)
                == .failed("job helm-install-loki failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"))
        var failedChart = Self.chart
        failedChart["status"] = ["conditions": [["type": "Failed", "status": "True", "reason": "Job failed", "message": "retries exhausted"]]]
        #expect(HelmInstall.judge(chart: failedChart, job: running, pods: [], replacedJob: nil)
                == .failed("the HelmChart's condition Failed is True (Job failed: retries exhausted)"))
    }

    @Test func aLiveSpecWithAddedDefaultsMatchesAndAChangedValueDoesNot() {
        var live = Self.chart
        live["spec"] = ["chart": "loki", "version": "18.13.1", "backOffLimit": 3, "failurePolicy": "reinstall"]
        #expect(HelmInstall.specMatches(live: live, rendered: Self.chart))
        live["spec"] = ["chart": "loki", "version": "18.13.2", "backOffLimit": 3]
        #expect(!HelmInstall.specMatches(live: live, rendered: Self.chart))
        #expect(!HelmInstall.specMatches(live: nil, rendered: Self.chart))
    }
}

/// The tests write the API's answers as JSON objects; provision decodes them into its typed models.
extension HelmInstall {
    static func judge(chart: [String: Any]?, job: [String: Any]?, pods: [[String: Any]], replacedJob: String?) -> HelmInstall {
        judge(chart: chart.map { decoded($0) as KubeHelmChart }, job: job.map { decoded($0) as KubeWorkload },
              pods: pods.map { decoded($0) as KubePod }, replacedJob: replacedJob)
    }

    static func restarts(_ pods: [[String: Any]], of job: [String: Any]) -> Int {
        restarts(pods.map { decoded($0) as KubePod }, of: decoded(job) as KubeWorkload)
    }

    static func specMatches(live: [String: Any]?, rendered: [String: Any]) -> Bool {
        specMatches(live: live.map { decoded($0) as KubeHelmChart }, rendered: decoded(rendered) as KubeHelmChart)
    }
}
