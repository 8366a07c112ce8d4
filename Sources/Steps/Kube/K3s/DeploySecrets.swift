import Engine
import Foundation

/// The Secrets the pipeline's manifests reference (k8s/README.md, "Secrets the provisioner
/// generates"), generated on the control plane and kept there only: the values live in 0600 files
/// under `directory` (root only) and reach the cluster as Secrets applied from files there. The
/// MongoDB password is read back once per apply only to be added to the run's redactor.
package enum DeploySecrets {
    /// Where the values and the Secret manifests live on the control plane.
    static let directory = "/var/lib/provision/k3s/secrets"
    /// The MongoDB root password's file.
    static let mongoPassword = directory + "/mongodb-password"

    /// The manifest (a JSON `v1 List` of Secrets) for `namespace`'s Secrets on the node.
    static func file(namespace: String) -> String { "\(directory)/\(namespace).json" }

    /// A script that generates each value once (alphanumeric MongoDB password; a 22-character
    /// Kafka cluster id) and (re)writes both namespaces' Secret manifests, all 0600. It prints nothing.
    static let ensureScript = """
        set -e
        umask 077
        d=\(directory)
        mkdir -p "$d" && chmod 700 "$d"
        if [ ! -s "$d/mongodb-password" ]; then
          head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > "$d/mongodb-password.new"
          mv -f "$d/mongodb-password.new" "$d/mongodb-password"
        fi
        if [ ! -s "$d/kafka-cluster-id" ]; then
          head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\\n' | head -c 22 > "$d/kafka-cluster-id.new"
          mv -f "$d/kafka-cluster-id.new" "$d/kafka-cluster-id"
        fi
        p=$(cat "$d/mongodb-password"); id=$(cat "$d/kafka-cluster-id")
        labels='"labels":{"app.kubernetes.io/part-of":"gpu-pipeline","app.kubernetes.io/managed-by":"provision"}'
        printf '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"kafka-cluster","namespace":"platform",%s},"type":"Opaque","stringData":{"CLUSTER_ID":"%s"}},{"apiVersion":"v1","kind":"Secret","metadata":{"name":"mongodb-credentials","namespace":"platform",%s},"type":"Opaque","stringData":{"username":"root","password":"%s"}}]}\\n' "$labels" "$id" "$labels" "$p" > "$d/platform.json.new"
        mv -f "$d/platform.json.new" "$d/platform.json"
        printf '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"processor-mongodb","namespace":"app",%s},"type":"Opaque","stringData":{"uri":"mongodb://root:%s@mongodb-0.mongodb.platform.svc.cluster.local:27017/?authSource=admin"}}]}\\n' "$labels" "$p" > "$d/app.json.new"
        mv -f "$d/app.json.new" "$d/app.json"
        """

    /// Runs `ensureScript` on `control` and adds the MongoDB password to the run's redactor.
    static func ensure(on control: K3sNode, context: StepContext) async throws {
        try await control.must(ensureScript, "generating the pipeline's secrets under \(directory)")
        let password = try await control.read(mongoPassword).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else { throw StepFailure("\(mongoPassword) on \(control.name) is empty after generating it") }
        context.addSecret(password)
    }
}
