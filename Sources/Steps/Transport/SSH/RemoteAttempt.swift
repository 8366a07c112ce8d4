import Engine
import Foundation

/// The step attempt a command on a node belongs to, so that a later attempt of the same step
/// stops what an earlier one left running there.
///
/// A remote command survives a dropped channel (a killed `provision`, a timed-out attempt): sshd
/// starts it in its own session, so it keeps running without anyone reading its output. Each
/// command of an attempt is therefore wrapped: it first waits for the commands of *other*
/// attempts of the same step that still run on the node to finish (a service manager's `start`
/// cut in the middle leaves the unit half started), stops them if they run past `awaitSeconds`
/// (SIGTERM to their process group, SIGKILL after `graceSeconds`), then records its own pid and
/// start time in a file named after its attempt under `/tmp/.provision-children/<step>/`, and
/// removes that file when it ends. The command itself runs in a subshell whose output goes to
/// files beside that record and reaches the channel only once it has ended: a command that wrote
/// to a dropped channel would die of SIGPIPE at its next line (a `start` cut in the middle), and
/// one that always finishes can be awaited. The record lives on the
/// node because that is where it can be acted on, whatever the state of the machine running
/// `provision`. Commands of the same attempt (run in parallel) leave each other alone.
public struct RemoteAttempt: Sendable, Hashable {
    /// The step.
    public let step: StepID
    /// The attempt (`StepContext.attemptIdentity`).
    public let identity: String
    /// How long an earlier attempt's command may go on before it is stopped, in seconds (the
    /// longest a step's command on a node is allowed to take).
    public var awaitSeconds = 60
    /// How long an earlier attempt's command gets after SIGTERM before SIGKILL, in seconds.
    public var graceSeconds = 10

    /// The folder on the node that holds the running commands of every step.
    public static let directory = "/tmp/.provision-children"

    /// The attempt of `context`, or nil when its commands must not stop anything (an audit).
    public init?(_ context: StepContext) {
        guard let identity = context.attemptIdentity else { return nil }
        self.init(step: context.stepID, identity: identity)
    }

    /// An attempt by its parts.
    public init(step: StepID, identity: String) {
        self.step = step
        self.identity = identity
    }

    /// The folder of this step's running commands on the node.
    public var stepDirectory: String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let name = step.rawValue.map { allowed.contains($0) ? String($0) : String(format: "%%%02X", $0.asciiValue ?? 0x3F) }.joined()
        return "\(Self.directory)/\(name)"
    }

    /// `command`, wrapped as described above. It runs in the login shell sshd started for the
    /// channel, which leads its own process group: `$$` is the group a later attempt awaits or
    /// stops. Its output arrives when it ends (no caller streams a node command's output).
    public func wrap(_ command: String) -> String {
        let identity = identity.filter { $0.isLetter || $0.isNumber || $0 == "." }
        return """
            __pv_dir='\(stepDirectory)'; __pv_me="$__pv_dir/\(identity).$$"
            __pv_start() { { read -r __pv_l < "/proc/$1/stat"; } 2>/dev/null || return 1; __pv_l=${__pv_l##*) }; set -- $__pv_l; echo "${20}"; }
            __pv_alive() {
              for __pv_s in /proc/[0-9]*/stat; do
                { read -r __pv_l < "$__pv_s"; } 2>/dev/null || continue
                __pv_l=${__pv_l##*) }; set -- $__pv_l
                [ "$3" = "$__pv_g" ] && [ "$1" != Z ] && return 0
              done
              return 1
            }
            __pv_wait() { __pv_n=0; while __pv_alive && [ $__pv_n -lt $1 ]; do sleep 0.1; __pv_n=$((__pv_n + 1)); done; ! __pv_alive; }
            mkdir -p "$__pv_dir" 2>/dev/null; chmod 700 '\(Self.directory)' "$__pv_dir" 2>/dev/null
            for __pv_f in "$__pv_dir"/*; do
              [ -f "$__pv_f" ] || continue
              case "${__pv_f##*/}" in \(identity).*) continue ;; esac
              __pv_g=; __pv_s0=; read -r __pv_g __pv_s0 < "$__pv_f" 2>/dev/null
              case "$__pv_g" in ''|*[!0-9]*) rm -f "$__pv_f"; continue ;; esac
              if [ -e "/proc/$__pv_g" ] && [ "$(__pv_start "$__pv_g")" != "$__pv_s0" ]; then rm -f "$__pv_f"; continue; fi
              if __pv_alive; then
                echo "provision: waiting for pid $__pv_g, left running on this node by an earlier attempt of \(step.rawValue)" >&2
                if ! __pv_wait \(awaitSeconds * 10); then
                  echo "provision: stopping pid $__pv_g, still running after \(awaitSeconds) s" >&2
                  kill -s TERM -- "-$__pv_g" 2>/dev/null
                  if ! __pv_wait \(graceSeconds * 10); then kill -s KILL -- "-$__pv_g" 2>/dev/null; __pv_wait 100 || { echo "provision: pid $__pv_g does not exit after SIGKILL; run the step again once it has" >&2; exit 125; }; fi
                fi
              fi
              rm -f "$__pv_f"
            done
            echo "$$ $(__pv_start $$)" > "$__pv_me"; trap 'rm -f "$__pv_me" "$__pv_me.out" "$__pv_me.err"' EXIT
            (
            \(command)
            ) > "$__pv_me.out" 2> "$__pv_me.err"
            __pv_rc=$?
            cat "$__pv_me.err" >&2; cat "$__pv_me.out"; exit $__pv_rc
            """
    }
}
