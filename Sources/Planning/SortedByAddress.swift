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
        let order = keys.indices.sorted { keys[$0] < keys[$1] }
        return (order.map { self[$0] }, order.map { keys[$0] })
    }
}
