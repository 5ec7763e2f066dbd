import Manifests

/// What one price list charges, as rating needs it.
public struct Prices: Sendable, Hashable, Codable {
    public typealias Rounding = PriceRounding

    public var currency: String
    /// Per flavor: the hourly price, and the prepaid monthly price if it can be prepaid.
    public var hourly: [String: Money]
    public var monthly: [String: Money]
    public var floatingIPDaily: Money?
    public var loadBalancerDaily: Money?
    public var volumePerGBMonth: Money?
    /// Per GB (10⁹ bytes) sent, public and internal (nil: not charged).
    public var bandwidthPerGB: Money?
    public var internalBandwidthPerGB: Money?
    /// Per GB-month held in a tenant's object-store account (nil: not charged).
    public var storagePerGBMonth: Money?
    public var rounding: Rounding
    /// Coupons by code: (amount or percent in millionths, expiry day's end in seconds, tenants allowed (empty: all)).
    public var coupons: [String: Coupon]

    public struct Coupon: Sendable, Hashable, Codable {
        public var amount: Money?
        public var discountPPM: Int64
        public var expires: Int64?
        public var tenants: [String]
    }

    public init(currency: String, hourly: [String: Money] = [:], monthly: [String: Money] = [:], floatingIPDaily: Money? = nil,
                loadBalancerDaily: Money? = nil, volumePerGBMonth: Money? = nil, bandwidthPerGB: Money? = nil, internalBandwidthPerGB: Money? = nil,
                storagePerGBMonth: Money? = nil, rounding: Rounding = .up, coupons: [String: Coupon] = [:]) {
        self.currency = currency
        self.hourly = hourly
        self.monthly = monthly
        self.floatingIPDaily = floatingIPDaily
        self.loadBalancerDaily = loadBalancerDaily
        self.volumePerGBMonth = volumePerGBMonth
        self.bandwidthPerGB = bandwidthPerGB
        self.internalBandwidthPerGB = internalBandwidthPerGB
        self.storagePerGBMonth = storagePerGBMonth
        self.rounding = rounding
        self.coupons = coupons
    }

    /// The prices of a PriceList document.
    public init(_ spec: PriceListSpec) {
        var hourly: [String: Money] = [:], monthly: [String: Money] = [:]
        for price in spec.flavors.value {
            hourly[price.flavor.value] = price.hourly.value
            if let month = price.monthly { monthly[price.flavor.value] = month.value }
        }
        var coupons: [String: Coupon] = [:]
        for coupon in spec.coupons?.value ?? [] {
            let expires = coupon.expires.flatMap { CalendarDate(parsing: $0.value) }.map { Calendar.UTC.seconds(of: $0) + 86_400 }
            coupons[coupon.code.value] = Coupon(amount: coupon.amountOff?.value, discountPPM: coupon.percentOff?.value.units ?? 0,  // percent at scale 4 = parts per million
                                                expires: expires, tenants: coupon.tenants?.value.map(\.value) ?? [])
        }
        self.init(currency: spec.currency.value, hourly: hourly, monthly: monthly, floatingIPDaily: spec.floatingIPDaily?.value,
                  loadBalancerDaily: spec.loadBalancerDaily?.value, volumePerGBMonth: spec.volumePerGBMonth?.value,
                  bandwidthPerGB: spec.bandwidthPerGB?.value, internalBandwidthPerGB: spec.internalBandwidthPerGB?.value,
                  storagePerGBMonth: spec.storagePerGBMonth?.value, rounding: spec.rounding?.value ?? .up, coupons: coupons)
    }
}

/// Every price list's history: the prices in force from each time on (a commit's time, read from git). A change
/// applies from its time forward, never to periods that began before it.
public struct PriceBook: Sendable {
    /// Per list, its versions oldest first.
    public private(set) var versions: [String: [(from: Int64, prices: Prices)]] = [:]

    public init() {}

    /// Records that `list` charges `prices` from `time` on (a version equal to the one in force is not kept).
    public mutating func add(_ list: String, from time: Int64, _ prices: Prices) {
        var history = versions[list] ?? []
        if let last = history.last, last.prices == prices { return }
        history.append((time, prices))
        history.sort { $0.from < $1.from }
        versions[list] = history
    }

    /// The versions of `list` that are in force during [from, to): each with the span it covers.
    func spans(_ list: String, from: Int64, to: Int64) -> [(from: Int64, to: Int64, prices: Prices)] {
        guard let history = versions[list], !history.isEmpty else { return [] }
        var spans: [(Int64, Int64, Prices)] = []
        for (index, version) in history.enumerated() {
            // The first version also covers what came before it: the list existed when the first interval began.
            let begin = index == 0 ? Int64.min : version.from
            let end = index + 1 < history.count ? history[index + 1].from : Int64.max
            let lo = max(begin, from), hi = min(end, to)
            if lo < hi { spans.append((lo, hi, version.prices)) }
        }
        return spans
    }

    /// The prices of `list` in force at `time`.
    public func prices(_ list: String, at time: Int64) -> Prices? {
        versions[list]?.last { $0.from <= time }?.prices ?? versions[list]?.first?.prices
    }
}
