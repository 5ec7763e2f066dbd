import Manifests

extension Array {
    /// Sorted by each element's address, made once per element: `sorted { $0.address < $1.address }` on resources
    /// makes two addresses (each retaining its strings) per comparison, and moves whole resources as it sorts.
    func sorted(byAddress address: (Element) -> Address) -> [Element] {
        sortedByAddress(address).elements
    }

    /// Sorted by each element's address, with those addresses in the same order (made once per element).
    func sortedByAddress(_ address: (Element) -> Address) -> (elements: [Element], addresses: [Address]) {
        let keys = map(address)
        let order: [Int]
        if let prefixes = AddressPrefix.of(keys) {
            // Most comparisons are decided by the prefixes; a tie is decided by the addresses themselves.
            order = keys.indices.sorted { prefixes[$0] != prefixes[$1] ? prefixes[$0] < prefixes[$1] : keys[$0] < keys[$1] }
        } else {
            order = keys.indices.sorted { keys[$0] < keys[$1] }
        }
        return (order.map { self[$0] }, order.map { keys[$0] })
    }
}

/// The first bytes of an address's tenant and name as two big-endian integers, which order addresses of one kind and
/// region as `Address.<` does wherever they differ: a region's instances sort by comparing two integers, not strings.
struct AddressPrefix: Comparable {
    var tenant: UInt64
    var name: UInt64
    /// The tenant is longer than 8 bytes: equal tenant prefixes do not mean equal tenants, so such a tie is not decided
    /// by the names' prefixes.
    var longTenant: Bool

    static func < (lhs: AddressPrefix, rhs: AddressPrefix) -> Bool {
        if lhs.tenant != rhs.tenant { return lhs.tenant < rhs.tenant }
        if lhs.longTenant || rhs.longTenant { return false }  // undecided: the caller compares the addresses
        return lhs.name < rhs.name
    }

    static func == (lhs: AddressPrefix, rhs: AddressPrefix) -> Bool {
        lhs.tenant == rhs.tenant && (lhs.longTenant || rhs.longTenant || lhs.name == rhs.name)
    }

    /// The prefixes of `addresses`, when they all have one kind and region and every tenant and name is ASCII with no NUL
    /// (whose byte order is `String`'s order; a shorter string, padded with zeros, sorts first); nil otherwise. An empty
    /// tenant (not nil) is left to `Address.<`, which does not tell it from none.
    static func of(_ addresses: [Address]) -> [AddressPrefix]? {
        guard let first = addresses.first else { return [] }
        var prefixes: [AddressPrefix] = []
        prefixes.reserveCapacity(addresses.count)
        for address in addresses {
            guard address.kind == first.kind, address.region == first.region, address.tenant != "",
                  let tenant = packed(address.tenant ?? ""), let name = packed(address.name) else { return nil }
            prefixes.append(AddressPrefix(tenant: tenant.value, name: name.value, longTenant: tenant.long))
        }
        return prefixes
    }

    /// The first 8 bytes of `text`, big-endian, zero-padded; nil when it has a byte that is not ASCII or is NUL.
    private static func packed(_ text: String) -> (value: UInt64, long: Bool)? {
        var value: UInt64 = 0, count = 0
        for byte in text.utf8 {
            guard byte != 0, byte < 0x80 else { return nil }
            if count < 8 { value |= UInt64(byte) << (56 - 8 * count) }
            count += 1
        }
        return (value, count > 8)
    }
}
