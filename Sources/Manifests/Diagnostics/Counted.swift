extension Int {
    /// The count with its noun agreeing: `1 change`, `3 changes`, `0 changes`; `plural` for nouns that do not take an -s.
    public func counted(_ noun: String, plural: String? = nil) -> String {
        "\(self) \(self == 1 ? noun : plural ?? noun + "s")"
    }
}
