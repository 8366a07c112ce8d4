import Engine
import Foundation
import PlanLanguage
import Transport

/// K3s's install script for the online install (no `k3s.airgap`), pinned twice: fetched from the
/// k3s-io/k3s repository at the tag of the pinned release (not get.k3s.io, which serves whatever is
/// newest), and checked against `k3s.install_script_sha256` on the node before it is put where it
/// runs. A download whose digest differs, or a plan that pins no digest, never runs.
package struct InstallerDownload: Sendable, Equatable {
    /// Where the script comes from.
    let url: String
    /// The sha256 (64 lowercase hex) the script must have; nil: none pinned, nothing runs.
    let expected: String?

    /// The install script at release `version`'s tag (`v1.37.1+k3s1` → `.../v1.37.1%2Bk3s1/install.sh`).
    static func url(version: String) -> String { K3sSpec.installScriptURL(version: version) }

    /// Whether `text` is a sha256 as the plan writes it (64 hex digits).
    static func isDigest(_ text: String) -> Bool { K3sSpec.isDigest(text) }

    /// The node's shell command: downloads to `path`.download, compares its sha256 with `expected`
    /// and only then moves it to `path` (mode 0700). It prints `provision-installer: sha256 <got>` and
    /// exits 3 when the digests differ (the download is deleted), `provision-installer: download
    /// failed` and exits 4 when the download does.
    func command(to path: String) -> String {
        let staging = Shell.quoted(path + ".download")
        return "mkdir -p \(Shell.quoted((path as NSString).deletingLastPathComponent)) && rm -f \(staging) && "
            + "{ curl -sfL --retry 3 --connect-timeout 20 \(Shell.quoted(url)) -o \(staging) || { echo 'provision-installer: download failed'; exit 4; }; } && "
            + "got=$(sha256sum \(staging) | cut -d' ' -f1) && "
            + "if [ \"$got\" != \(Shell.quoted(expected?.lowercased() ?? "none pinned")) ]; then rm -f \(staging); echo \"provision-installer: sha256 $got\"; exit 3; fi && "
            + "chmod 700 \(staging) && mv -f \(staging) \(Shell.quoted(path))"
    }

    /// What a run of `command` on `node` that exited `status` with `output` means: nil when the
    /// script is in place, otherwise the failure to report (not retryable when the digest is wrong).
    func failure(status: Int32?, output: String, node: String) -> StepFailure? {
        guard status != 0 else { return nil }
        if let line = output.split(separator: "\n").last(where: { $0.hasPrefix("provision-installer: sha256 ") }) {
            let got = String(line.dropFirst("provision-installer: sha256 ".count)).trimmingCharacters(in: .whitespaces)
            guard let expected else {
                return StepFailure("""
                    K3s's install script is not pinned by digest, so \(node) does not run it: the one at \(url) has sha256 \(got). \
                    Check it against the release (the file in the k3s-io/k3s repository at that tag), then set k3s.install_script_sha256: \(got) \
                    (or install from files with k3s.airgap)
                    """, retryable: false)
            }
            return StepFailure("""
                K3s's install script downloaded on \(node) from \(url) has sha256 \(got), but k3s.install_script_sha256 pins \(expected.lowercased()): \
                it was deleted, not run. If the pinned release's script really is \(got) (check the file at that tag), pin that; otherwise \
                something between the node and GitHub changed it
                """, retryable: false)
        }
        if output.contains("provision-installer: download failed") {
            return StepFailure("downloading K3s's install script from \(url) on \(node) failed: the node needs HTTPS egress to raw.githubusercontent.com "
                               + "(or install from files with k3s.airgap)")
        }
        return StepFailure("fetching K3s's install script on \(node) failed (exit \(status.map(String.init) ?? "by a signal")): \(output.suffix(600))")
    }
}
