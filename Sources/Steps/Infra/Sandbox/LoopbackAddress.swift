import CShim  // brings in <sys/socket.h> (SOCK_STREAM, SOCK_CLOEXEC), which Glibc alone does not export
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Loopback addresses for sandbox nodes (127.0.1.N), each node on its own address.
public enum LoopbackAddress {
    /// Whether something accepts TCP connections on `address:port` right now.
    public static func accepts(_ address: String, port: Int) -> Bool {
        withSocket(address, port: port) { fd, pointer, length in Glibc.connect(fd, pointer, length) == 0 }
    }

    /// Whether `address:port` can be bound (nobody listens there).
    public static func isFree(_ address: String, port: Int) -> Bool {
        withSocket(address, port: port) { fd, pointer, length in bind(fd, pointer, length) == 0 }
    }

    /// A 127.0.1.N (N from 2 to 254, in random order) not in `taken` whose `port` is free on this
    /// machine. Callers hold `SandboxLock` so two provisioners cannot pick the same one. Random,
    /// not the lowest: a node powered off keeps its address on EC2, but here it frees it, and
    /// lowest-first handed it straight to another plan's next node, whose host key `down` of the
    /// first plan then met on it.
    public static func allocate(port: Int, taken: Set<String>) throws -> String {
        for n in (2...254).shuffled() {
            let candidate = "127.0.1.\(n)"
            if !taken.contains(candidate) && isFree(candidate, port: port) { return candidate }
        }
        throw SandboxError.noAddress
    }

    private static func withSocket(_ address: String, port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &addr.sin_addr)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}
