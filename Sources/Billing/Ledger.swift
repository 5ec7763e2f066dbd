import Manifests
import Planning

/// One metering interval: a resource billed from `start` until `stop` (nil: still running), as the apply run that
/// caused it wrote it. Times are seconds since the epoch (UTC).
public struct MeterInterval: Sendable, Codable, Hashable {
    public var address: Address
    public var tenant: String
    public var kind: MeterKind
    /// The flavor (instances) or the size (volumes, `200GiB`); empty for floating IPs.
    public var item: String
    /// Units billed (GB for volumes; 1 otherwise).
    public var quantity: Int64
    public var period: ChargePeriod
    public var priceList: String
    public var start: Int64
    public var stop: Int64?

    public init(address: Address, tenant: String, kind: MeterKind, item: String, quantity: Int64 = 1, period: ChargePeriod, priceList: String,
                start: Int64, stop: Int64? = nil) {
        self.address = address
        self.tenant = tenant
        self.kind = kind
        self.item = item
        self.quantity = quantity
        self.period = period
        self.priceList = priceList
        self.start = start
        self.stop = stop
    }
}

/// The bytes one instance sent or received, public or internal, within one hour, as the meter recorded them from its
/// node's counters (`TrafficCounter`), under the price list its tenant was billed by then.
public struct TrafficUsage: Sendable, Codable, Hashable {
    public var tenant: String
    public var instance: Address
    public var direction: TrafficCounter.Direction
    public var scope: TrafficCounter.Scope
    public var priceList: String
    /// The hour's start (seconds since the epoch, a multiple of 3,600).
    public var hour: Int64
    public var bytes: Int64

    public init(tenant: String, instance: Address, direction: TrafficCounter.Direction, scope: TrafficCounter.Scope, priceList: String, hour: Int64, bytes: Int64) {
        self.tenant = tenant
        self.instance = instance
        self.direction = direction
        self.scope = scope
        self.priceList = priceList
        self.hour = hour
        self.bytes = bytes
    }
}

/// What a tenant's account in a region's object store held in one hour (its first sample that hour: each hour is
/// recorded once, whoever samples it and however often).
public struct StorageUsage: Sendable, Codable, Hashable {
    public var tenant: String
    public var region: String
    public var priceList: String
    /// The hour's start (seconds since the epoch, a multiple of 3,600).
    public var hour: Int64
    public var bytes: Int64

    public init(tenant: String, region: String, priceList: String, hour: Int64, bytes: Int64) {
        self.tenant = tenant
        self.region = region
        self.priceList = priceList
        self.hour = hour
        self.bytes = bytes
    }

    /// How its statement line names it: the tenant's account in the region.
    public var account: String { "account/\(region)/\(tenant)" }
}

/// Money recorded for a tenant: a deposit, a coupon redeemed (an amount to spend, or a discount, until it expires), or
/// the reversal of an earlier entry (recorded by an operator with a reason; the ledger is never edited).
public struct AccountEntry: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable { case deposit, coupon, reversal }

    /// Its number in the ledger (nil until recorded).
    public var id: Int64?
    /// The entry a reversal takes back.
    public var reverses: Int64?

    public var tenant: String
    public var kind: Kind
    /// The amount (a deposit, or an amount-off coupon).
    public var amount: Money
    /// Off every charge while it is valid (a percent-off coupon), in parts per million (20% = 200,000).
    public var discountPPM: Int64
    public var currency: String
    /// The coupon's code, or the deposit's note.
    public var reference: String
    /// Who recorded it, and when.
    public var by: String
    public var at: Int64
    /// When it stops counting (coupons), nil for never.
    public var expires: Int64?

    public init(tenant: String, kind: Kind, amount: Money, discountPPM: Int64 = 0, currency: String, reference: String, by: String, at: Int64, expires: Int64? = nil,
                id: Int64? = nil, reverses: Int64? = nil) {
        self.id = id
        self.reverses = reverses
        self.tenant = tenant
        self.kind = kind
        self.amount = amount
        self.discountPPM = discountPPM
        self.currency = currency
        self.reference = reference
        self.by = by
        self.at = at
        self.expires = expires
    }
}

/// An amount the ledger cannot store: past 64 bits of millionths (amounts are bounded by `Money.limit` where they come in).
public struct LedgerAmountOutOfRange: Error, CustomStringConvertible {
    public var amount: Money
    public var description: String { "the amount \(amount) is more than the ledger holds (at most \(Money.limit) an entry)" }
}

extension AccountEntry {
    /// Its amount as the ledger stores it, in millionths.
    public func storedAmount() throws(LedgerAmountOutOfRange) -> Int64 {
        guard let micros = amount.storedMicros else { throw LedgerAmountOutOfRange(amount: amount) }
        return micros
    }
}

extension Money {
    /// Rounded half to even to a hundredth of the unit (what a statement shows).
    public var roundedToCents: Money {
        let magnitude = micros.magnitude
        var cents = magnitude / 10_000
        let rest = magnitude % 10_000
        if rest > 5_000 || (rest == 5_000 && cents % 2 == 1) { cents += 1 }
        return Money(micros: (micros < 0 ? -1 : 1) * Int128(cents) * 10_000)
    }
}
