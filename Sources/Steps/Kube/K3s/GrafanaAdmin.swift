import Engine
import Foundation

/// Grafana's admin credentials: the password is generated on the control plane the first time
/// (32 alphanumerics, a 0600 file beside DeploySecrets' values) and reaches the cluster only as the
/// Secret `monitoring/grafana-admin` (keys `admin-user`, `admin-password`) that kube-prometheus-stack's
/// values name (`grafana.admin.existingSecret`), so no chart value holds it. `provision secrets
/// grafana` is the one place it is shown.
package enum GrafanaAdmin {
    /// Grafana's admin user name (not secret).
    package static let user = "admin"
    /// The password's file on the control plane.
    package static let passwordFile = DeploySecrets.directory + "/grafana-admin-password"
    /// The Secret's manifest (a JSON `v1 List`) on the control plane.
    static let secretFile = DeploySecrets.directory + "/monitoring.json"
    /// The Secret's name in namespace `monitoring`.
    static let secretName = "grafana-admin"

    /// A script that generates the password once and (re)writes the Secret's manifest, all 0600.
    /// It prints nothing.
    static let ensureScript = """
        set -e
        umask 077
        d=\(DeploySecrets.directory)
        mkdir -p "$d" && chmod 700 "$d"
        if [ ! -s \(passwordFile) ]; then
          head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > \(passwordFile).new
          mv -f \(passwordFile).new \(passwordFile)
        fi
        chmod 600 \(passwordFile)
        p=$(cat \(passwordFile))
        labels='"labels":{"app.kubernetes.io/name":"grafana","app.kubernetes.io/part-of":"gpu-pipeline","app.kubernetes.io/managed-by":"provision"}'
        printf '{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"\(secretName)","namespace":"monitoring",%s},"type":"Opaque","stringData":{"admin-user":"\(user)","admin-password":"%s"}}]}\\n' "$labels" "$p" > \(secretFile).new
        mv -f \(secretFile).new \(secretFile)
        """

    /// Runs `ensureScript` on `control` and adds the password to the run's redactor.
    static func ensure(on control: K3sNode, context: StepContext) async throws {
        try await control.must(ensureScript, "generating Grafana's admin password under \(DeploySecrets.directory)")
        let password = try await read(on: control)
        context.addSecret(password)
    }

    /// The password on `control`; fails when it has none.
    static func read(on control: K3sNode) async throws -> String {
        let password = try await control.read(passwordFile).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else {
            throw StepFailure("\(passwordFile) on \(control.name) is missing or empty; run 'provision up' so the monitoring step generates it", retryable: false)
        }
        return password
    }
}
