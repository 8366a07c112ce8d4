/// How commands for a node's `sh` are written: the one place that quotes text and that runs a
/// command as root.
package enum Shell {
    /// `text` single-quoted for sh: safe for any text.
    package static func quoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `command` as root: itself when the login user is root, else through `sudo -n sh -c`
    /// (never prompting: a node whose user may not sudo without a password fails at once).
    package static func asRoot(_ command: String, loginIsRoot: Bool) -> String {
        loginIsRoot ? command : "sudo -n sh -c \(quoted(command))"
    }
}
