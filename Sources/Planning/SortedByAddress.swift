import Manifests

extension Array {
    /// Sorted by each element's address, made once per element: `sorted { $0.address < $1.address }` on resources
    /// makes two addresses (each retaining its strings) per comparison, and moves whole resources as it sorts.
    func sorted(byAddress address: (Element) -> Address) -> [Element] {
        let keys = map(address)
        return keys.indices.sorted { keys[$0] < keys[$1] }.map { self[$0] }
    }
}
