import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A sandbox node that boots systemd (`sandbox.init: systemd`): a `systemd-nspawn` machine with
/// systemd as its PID 1 in its own PID, mount and UTS namespaces, sharing this machine's network
/// (no `--private-network`: its sshd answers on the node's loopback address, like an OpenRC node's).
///
/// Its root is assembled from overlays (lower: the node image, then this machine; upper: the node's
/// own `upper/`, which survives a stop and a boot, like an EC2 root volume across a reboot), with
/// its own `/root`. The instance's user data is its NoCloud seed, so cloud-init's own units run it
/// at boot. Each node runs in a cgroup of its own (`provision-sandbox/<instance>`), so the systemd
/// of one node never sees another's units.
extension SandboxHost {
    /// Where a node's cgroups live under each hierarchy systemd uses here.
    static let cgroupParents = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]

    /// Writes the node's boot script and, into its upper layer, what the first boot needs: its
    /// machine id (once), sshd's configuration and the NoCloud seed.
    static func prepareSystemd(_ spec: Spec) throws {
        let dir = spec.directory
        let files = FileManager.default
        let upper = dir.appendingPathComponent("upper")
        for path in ["etc/ssh", "var/lib/cloud/seed/nocloud", "usr", "opt", "home", "srv"] {
            try files.createDirectory(at: upper.appendingPathComponent(path), withIntermediateDirectories: true)
        }
        let machineID = upper.appendingPathComponent("etc/machine-id")
        if !files.fileExists(atPath: machineID.path) {
            let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            try write(id + "\n", to: machineID, mode: 0o444)
        }
        try write(sshdConfig(spec).replacingOccurrences(of: "PidFile none\n", with: ""), to: upper.appendingPathComponent("etc/ssh/sshd_config"), mode: 0o644)
        let seed = upper.appendingPathComponent("var/lib/cloud/seed/nocloud")
        try write(spec.userData ?? "#cloud-config\n{}\n", to: seed.appendingPathComponent("user-data"), mode: 0o600)
        try write("instance-id: \(spec.instanceID)\nlocal-hostname: \(spec.node)\n", to: seed.appendingPathComponent("meta-data"), mode: 0o600)
        try write(systemdBootScript(spec), to: dir.appendingPathComponent("boot.sh"), mode: 0o700)
    }

    /// Runs as PID 1 of the node's outer namespaces: assembles the root, moves itself into the
    /// node's cgroup and becomes `systemd-nspawn` (`--keep-unit`: the machine lives in that cgroup).
    static func systemdBootScript(_ spec: Spec) -> String {
        let image = spec.image?.path ?? ""
        let machine = spec.node.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        return """
        #!/bin/sh
        # Sandbox node boot (systemd): PID 1 of its outer namespaces until systemd-nspawn replaces it.
        set -eu
        node='\(spec.directory.path)'
        image='\(image)'
        root="$node/rootfs"
        mkdir -p "$root"
        mount -t tmpfs -o mode=755 tmpfs "$root"
        for l in bin sbin lib lib32 lib64 libx32; do
          if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" "$root/$l"; fi
        done
        for d in etc usr var opt home srv; do
          mkdir -p "$node/upper/$d" "$node/work/$d" "$root/$d"
          lower="/$d"
          if [ -n "$image" ] && [ -d "$image/$d" ]; then lower="$image/$d:/$d"; fi
          mount -t overlay overlay -o "lowerdir=$lower,upperdir=$node/upper/$d,workdir=$node/work/$d" "$root/$d"
        done
        for d in root tmp run proc sys dev mnt media; do mkdir -p "$root/$d"; done
        chmod 1777 "$root/tmp"
        for parent in \(cgroupParents.joined(separator: " ")); do
          if [ -d "$parent" ]; then
            mkdir -p "$parent/provision-sandbox/\(spec.instanceID)"
            echo $$ > "$parent/provision-sandbox/\(spec.instanceID)/cgroup.procs"
          fi
        done
        exec systemd-nspawn --quiet --directory="$root" --boot --register=no --keep-unit --machine='\(machine)' \\
          --bind="$node/root:/root" --bind-ro="$node/ssh_host_ed25519_key:/run/node/ssh_host_ed25519_key"

        """
    }

    /// Removes the node's cgroups, deepest first, once the killed machine's processes have left
    /// them (waiting up to 5 s); one still in use stays.
    static func removeCgroups(_ instanceID: String) async {
        for _ in 0..<100 {
            removeEmptyCgroups(instanceID)
            guard cgroupParents.contains(where: { FileManager.default.fileExists(atPath: "\($0)/provision-sandbox/\(instanceID)") }) else { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private static func removeEmptyCgroups(_ instanceID: String) {
        for parent in cgroupParents {
            let top = "\(parent)/provision-sandbox/\(instanceID)"
            guard let found = FileManager.default.enumerator(atPath: top) else { continue }
            let directories = found.compactMap { $0 as? String }.filter { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: "\(top)/\(path)", isDirectory: &isDirectory) && isDirectory.boolValue
            }
            for path in directories.sorted(by: { $0.count > $1.count }) { rmdir("\(top)/\(path)") }
            rmdir(top)
        }
    }
}
