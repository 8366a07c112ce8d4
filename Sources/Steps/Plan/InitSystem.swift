/// The init system a node boots: what runs its services and where their logs go.
///
/// K3s's install script supports both; the aws target's Ubuntu runs systemd. A sandbox node boots
/// either (the plan's `sandbox.init`).
public enum InitSystem: String, Codable, Sendable, CaseIterable {
    /// OpenRC: services under supervise-daemon, their output in files under `/var/log`. A sandbox
    /// node of this kind has `sshd` as its PID 1 and OpenRC started by its init script, which also
    /// writes cloud-init's status files (cloud-init itself does not run).
    case openrc
    /// systemd as PID 1: services are units, their output in journald. A sandbox node of this kind
    /// is a `systemd-nspawn` machine whose cloud-init units run the instance's user data at boot.
    case systemd

    /// A shell command, run on a node, that prints the node's init system (`systemd` when systemd
    /// is its PID 1's manager, else `openrc`).
    public static let detectCommand = "if [ -d /run/systemd/system ]; then echo systemd; else echo openrc; fi"
}
