/// Why an agent did not join, read from the last lines of its log: the known causes get their own
/// message and fix; anything else is reported with the lines themselves.
package enum AgentLogCause: Equatable, Sendable {
    /// The server remembers a node of this name with another node password (a re-created machine).
    case nodePasswordRejected
    /// The server refused the token.
    case wrongToken
    /// The agent cannot reach the API server on 6443.
    case serverUnreachable
    /// The server takes the connection but never answers the join.
    case serverNotAnswering
    /// Nothing known in the log.
    case unknown

    /// Classifies an agent log (the most recent known cause wins).
    init(log: String) {
        let lines = log.split(separator: "\n").reversed()
        for line in lines {
            if line.contains("Node password rejected") { self = .nodePasswordRejected; return }
            if line.contains("401 Unauthorized") || line.contains("token is not valid") || line.contains("token CA hash does not match") {
                self = .wrongToken
                return
            }
            if line.contains(":6443") && (line.contains("connection refused") || line.contains("no route to host") || line.contains("i/o timeout")) {
                self = .serverUnreachable
                return
            }
            if line.contains("server is not ready") || line.contains("context deadline exceeded") {
                self = .serverNotAnswering
                return
            }
        }
        self = .unknown
    }

    /// The error of a join that ran out of time, with the cause, its fix and the log's last lines.
    /// `logFile` names where the log was read (a file, or `journalctl -u k3s-agent`).
    func message(worker: String, server: String, url: String, deadline: Duration, tokenSecret: String?, logFile: String, tail: String) -> String {
        let cause: String
        switch self {
        case .nodePasswordRejected:
            cause = """
                the server on \(server) rejected \(worker)'s node password ("Node password rejected"): a node named \(worker) joined \
                before from a machine that no longer exists (it was re-created under the same name). Fix: delete the stale node \
                object on the control plane (\(Kubectl.shown("delete node \(worker)")), which also removes its \(worker).node-password.k3s \
                secret), then 'provision resume'
                """
        case .wrongToken:
            let which = tokenSecret.map { "the secret '\($0)' (k3s.token) is not the token the server was installed with" }
                ?? "the token read from the server does not match its certificates"
            cause = """
                the server on \(server) refused the join token: \(which). Fix: give k3s.token the server's token, or reinstall the \
                server, then 'provision resume'
                """
        case .serverUnreachable:
            cause = """
                \(worker) cannot reach the API server at \(url). Fix: check that k3s runs on \(server) ('rc-service k3s status' or \
                'systemctl status k3s') and that the security group lets the workers reach port 6443, then 'provision resume'
                """
        case .serverNotAnswering:
            cause = """
                the server at \(url) takes \(worker)'s connection but never answers its join (the agent keeps waiting). Fix: look at \
                the server's log on \(server) ('journalctl -u k3s' under systemd, /var/log/k3s.log under OpenRC; an overloaded or stuck server; \(Kubectl.shown("get --raw /readyz"))), then 'provision resume'
                """
        case .unknown:
            cause = "no known cause in its log; look at \(logFile) on \(worker), fix, then 'provision resume'"
        }
        return "k3s agent on \(worker) did not join within \(deadline.formatted): \(cause).\nlast lines of \(logFile):\n\(tail)"
    }
}
