/// An IPv4 CIDR block (`10.52.0.0/16`): the plan's VPC, pod and service ranges and `allowed_cidrs`.
///
/// Parsing is strict, as AWS and K3s are: four decimal octets of 0-255 and a prefix of 0-32. A block
/// whose address has host bits set (`10.52.3.0/16`) parses, keeping the address as written; `network`
/// says which block it really is, so the loader can name the intended value.
public struct IPv4CIDR: Sendable, Equatable, CustomStringConvertible {
    /// The address as written, as a 32-bit number.
    public let address: UInt32
    /// The prefix length, 0-32.
    public let prefix: Int

    /// Parses `a.b.c.d/n`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Self.decimal(parts[1], max: 32) else { return nil }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var address: UInt32 = 0
        for octet in octets {
            guard let value = Self.decimal(octet, max: 255) else { return nil }
            address = address << 8 | UInt32(value)
        }
        self.address = address
        self.prefix = prefix
    }

    /// A block from its parts.
    public init(address: UInt32, prefix: Int) {
        self.address = address
        self.prefix = prefix
    }

    /// The bits the prefix covers.
    public var mask: UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }
    /// The first address of the block.
    public var first: UInt32 { address & mask }
    /// The last address of the block.
    public var last: UInt32 { first | ~mask }
    /// The block with its host bits cleared (`10.52.3.0/16` → `10.52.0.0/16`).
    public var network: IPv4CIDR { IPv4CIDR(address: first, prefix: prefix) }
    /// Whether the address as written is the block's first address.
    public var isNetworkAddress: Bool { address == first }

    /// Whether the two blocks share at least one address.
    public func overlaps(_ other: IPv4CIDR) -> Bool {
        first <= other.last && other.first <= last
    }

    /// The `index`-th block `newBits` longer than this one: Terraform's `cidrsubnet(self, newBits, index)`.
    public func subnet(newBits: Int, index: UInt32) -> IPv4CIDR {
        let prefix = self.prefix + newBits
        return IPv4CIDR(address: first | index << UInt32(32 - prefix), prefix: prefix)
    }

    /// The `index`-th address of the block (Terraform's `cidrhost`): K3s's cluster DNS is the service range's 10th.
    public func host(_ index: UInt32) -> String {
        Self.dotted(first + index)
    }

    public var description: String { "\(Self.dotted(address))/\(prefix)" }

    private static func dotted(_ value: UInt32) -> String {
        [24, 16, 8, 0].map { String(value >> UInt32($0) & 0xff) }.joined(separator: ".")
    }

    /// A decimal number without sign or leading zeros (`010` is octal to some parsers: refused).
    private static func decimal(_ text: Substring, max: Int) -> Int? {
        guard !text.isEmpty, text.count <= 3, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber),
              text == "0" || !text.hasPrefix("0"), let value = Int(text), value <= max else { return nil }
        return value
    }
}
