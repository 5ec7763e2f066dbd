import Planning

/// The ledger's rules, one set for every store: what a meter does to its resource's open interval. A store reads the
/// open interval and carries out the step in the transaction of the journal write that causes it.
public enum MeterRules {
    /// The terms of an interval still open (no stop), as a store keeps them.
    public struct OpenInterval: Sendable, Equatable {
        public var id: Int64
        public var item: String
        public var quantity: Int64
        public var period: String
        public var priceList: String
        public var start: Int64

        public init(id: Int64, item: String, quantity: Int64, period: String, priceList: String, start: Int64) {
            self.id = id
            self.item = item
            self.quantity = quantity
            self.period = period
            self.priceList = priceList
            self.start = start
        }
    }

    /// What one meter does.
    public enum Step: Sendable, Equatable {
        /// Already in force (a replay charges nothing twice): nothing changes.
        case keep
        /// Nothing was charged at the open interval's terms yet (it starts now or later): it takes the new ones.
        case amend(id: Int64)
        /// The terms change: the open interval stops at the meter's time and a new one opens then.
        case close(id: Int64)
        /// No interval is open: one opens at the meter's time.
        case open
    }

    /// The step `meter` takes at `time` given the resource's `open` interval.
    public static func step(_ meter: Meter, open: OpenInterval?, at time: Int64) -> Step {
        guard let open else { return .open }
        let same = open.item == meter.item && open.quantity == meter.quantity && open.period == meter.period.rawValue && open.priceList == meter.priceList
        if same { return .keep }
        return time <= open.start ? .amend(id: open.id) : .close(id: open.id)
    }
}
