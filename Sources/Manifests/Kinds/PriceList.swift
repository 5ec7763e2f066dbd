import YAML

/// What one flavor costs.
public struct FlavorPrice: Sendable, Encodable {
    /// The flavor's name (the key in `flavors:`).
    public var flavor: Located<String>
    /// Pay-as-you-go price per hour.
    public var hourly: Located<Money>
    /// Prepaid price per month, if the flavor can be prepaid.
    public var monthly: Located<Money>?

    static let fields = ["hourly", "monthly"]
}

/// A discount code.
public struct Coupon: Sendable, Encodable {
    /// The code tenants enter.
    public var code: Located<String>
    /// Percentage off (0-100].
    public var percentOff: Located<FixedPoint>?
    /// Fixed amount off a bill.
    public var amountOff: Located<Money>?
    /// Last day it is valid, `YYYY-MM-DD`.
    public var expires: Located<String>?
    /// Tenants allowed to use it (none: every tenant).
    public var tenants: Located<[Located<String>]>?

    static let fields = ["code", "percentOff", "amountOff", "expires", "tenants"]
}

/// How a period that has only begun is charged.
public enum PriceRounding: String, Sendable, Hashable, Codable, CaseIterable {
    /// A started period is charged whole (Dough's way).
    case up
    /// Charged for the part used (rounded to the millionth).
    case exact
}

/// Prices for everything a tenant can run.
public struct PriceListSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.priceList
    static let fields = ["currency", "flavors", "floatingIP", "loadBalancer", "volume", "bandwidth", "internalBandwidth", "storage", "coupons", "rounding"]

    /// ISO 4217 code (`CNY`, `USD`).
    public var currency: Located<String>
    /// Per-flavor prices.
    public var flavors: Located<[FlavorPrice]>
    /// Per day, per floating IP.
    public var floatingIPDaily: Located<Money>?
    /// Per day, per load balancer.
    public var loadBalancerDaily: Located<Money>?
    /// Per GB-month of volume.
    public var volumePerGBMonth: Located<Money>?
    /// Per GB (10⁹ bytes) an instance sends across the region's edge (from its floating IP, masqueraded, or through a
    /// load balancer); unset: public traffic is not charged.
    public var bandwidthPerGB: Located<Money>?
    /// Per GB an instance sends inside the provider (to other instances, internal ranges); unset: not charged.
    public var internalBandwidthPerGB: Located<Money>?
    /// Per GB-month a tenant's account holds in a region's object store (sampled hourly); unset: not charged.
    public var storagePerGBMonth: Located<Money>?
    /// Discount codes.
    public var coupons: Located<[Coupon]>?
    /// How partial periods are charged (default up: a started hour, day or month is charged whole).
    public var rounding: Located<PriceRounding>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> PriceListSpec? {
        var spec = (currency: Located<String>?.none, flavors: Located<[FlavorPrice]>?.none)
        var floatingIP: Located<Money>?, loadBalancer: Located<Money>?, volume: Located<Money>?, bandwidth: Located<Money>?, internalBandwidth: Located<Money>?
        var coupons: Located<[Coupon]>?, rounding: Located<PriceRounding>?, storage: Located<Money>?
        guard try d.mapping(what(), required: ["currency", "flavors"], { key throws(YAMLError) in
            switch key.value {
            case "currency":
                spec.currency = try d.parsed("currency", expected: "a three-letter currency code", hint: "write e.g. CNY or USD") { text in
                    text.count == 3 && text.allSatisfy(\.isUppercase) ? text : nil
                }
            case "flavors": spec.flavors = try decodeFlavorPrices(d)
            case "floatingIP": floatingIP = try d.singlePrice("floatingIP", unit: "daily")
            case "loadBalancer": loadBalancer = try d.singlePrice("loadBalancer", unit: "daily")
            case "volume": volume = try d.singlePrice("volume", unit: "perGBMonth")
            case "bandwidth": bandwidth = try d.singlePrice("bandwidth", unit: "perGB")
            case "internalBandwidth": internalBandwidth = try d.singlePrice("internalBandwidth", unit: "perGB")
            case "storage": storage = try d.singlePrice("storage", unit: "perGBMonth")
            case "coupons": coupons = try d.list("coupons") { () throws(YAMLError) in try decodeCoupon(d) }
            case "rounding": rounding = try d.choice("rounding", PriceRounding.self)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let currency = spec.currency, let flavors = spec.flavors else { return nil }
        return PriceListSpec(currency: currency, flavors: flavors, floatingIPDaily: floatingIP, loadBalancerDaily: loadBalancer,
                             volumePerGBMonth: volume, bandwidthPerGB: bandwidth, internalBandwidthPerGB: internalBandwidth, storagePerGBMonth: storage,
                             coupons: coupons, rounding: rounding)
    }

    private static func decodeFlavorPrices(_ d: ManifestDecoder) throws(YAMLError) -> Located<[FlavorPrice]>? {
        var prices: [FlavorPrice] = []
        guard let mapping = try d.mapping("flavors", { flavor throws(YAMLError) in
            var hourly: Located<Money>?, monthly: Located<Money>?
            let what = { "the price of flavor '\(flavor.value)'" }
            guard try d.mapping(what(), required: ["hourly"], { key throws(YAMLError) in
                switch key.value {
                case "hourly": hourly = try d.money("hourly")
                case "monthly": monthly = try d.money("monthly")
                default: try d.unknownField(key, in: what(), known: FlavorPrice.fields)
                }
            }) != nil else { return }
            if let hourly { prices.append(FlavorPrice(flavor: flavor, hourly: hourly, monthly: monthly)) }
        }) else { return nil }
        return Located(prices, at: d.location(mapping.mark))
    }

    private static func decodeCoupon(_ d: ManifestDecoder) throws(YAMLError) -> Coupon? {
        var code: Located<String>?, percentOff: Located<FixedPoint>?, amountOff: Located<Money>?
        var expires: Located<String>?, tenants: Located<[Located<String>]>?
        var discounts = 0
        guard let mark = try d.mapping("a coupon", required: ["code"], { key throws(YAMLError) in
            if key.value == "percentOff" || key.value == "amountOff" { discounts += 1 }
            switch key.value {
            case "code": code = try d.name("code")
            case "percentOff":
                percentOff = try d.decimal("percentOff", scale: 4)
                if let value = percentOff, !(1...1_000_000).contains(value.value.units) {
                    d.report(.error("'percentOff' must be more than 0 and at most 100", at: value.location))
                    percentOff = nil
                }
            case "amountOff": amountOff = try d.money("amountOff")
            case "expires":
                expires = try d.parsed("expires", expected: "a date", hint: "write YYYY-MM-DD") { text in
                    CalendarDate(parsing: text) != nil ? text : nil
                }
            case "tenants": tenants = try d.list("tenants") { () throws(YAMLError) in try d.name("tenants") }
            default: try d.unknownField(key, in: "a coupon", known: Coupon.fields)
            }
        }) else { return nil }
        if discounts != 1 {
            d.error("a coupon needs exactly one of 'percentOff' and 'amountOff'", at: mark.mark)
        }
        guard let code else { return nil }
        return Coupon(code: code, percentOff: percentOff, amountOff: amountOff, expires: expires, tenants: tenants)
    }

    private enum CodingKeys: String, CodingKey { case currency, flavors, floatingIPDaily, loadBalancerDaily, volumePerGBMonth, coupons, rounding }
}

extension ManifestDecoder {
    /// `field: {unit: amount}`, e.g. `floatingIP: {daily: 0.5}`.
    func singlePrice(_ field: String, unit: String) throws(YAMLError) -> Located<Money>? {
        var price: Located<Money>?
        guard try mapping("the \(field) price", required: [unit], { key throws(YAMLError) in
            if key.value == unit { price = try money(unit) } else { try unknownField(key, in: "the \(field) price", known: [unit]) }
        }) != nil else { return nil }
        return price
    }
}

/// A calendar day, `YYYY-MM-DD`.
public struct CalendarDate: Sendable, Hashable, Comparable {
    /// Year, month (1-12), day (1-31).
    public var year: Int, month: Int, day: Int

    /// Parses `YYYY-MM-DD` and checks the day exists.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month)
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        (self.year, self.month, self.day) = (year, month, day)
    }

    /// Orders chronologically.
    public static func < (lhs: CalendarDate, rhs: CalendarDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }
}
