import Foundation
import Manifests

/// UTC calendar arithmetic on seconds since the epoch (no time zones, no Foundation calendars).
public enum Calendar {
    public enum UTC {
        /// Midnight at the start of `date`.
        public static func seconds(of date: CalendarDate) -> Int64 {
            seconds(year: date.year, month: date.month, day: date.day)
        }

        /// Midnight at the start of the day.
        public static func seconds(year: Int, month: Int, day: Int) -> Int64 {
            // Days from civil (Howard Hinnant's algorithm).
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (month + 9) % 12
            let doy = (153 * mp + 2) / 5 + day - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return Int64(era * 146_097 + doe - 719_468) * 86_400
        }

        /// Year, month, day and seconds into the day of `time`.
        public static func parts(_ time: Int64) -> (year: Int, month: Int, day: Int, second: Int64) {
            let days = time >= 0 ? time / 86_400 : (time - 86_399) / 86_400
            let second = time - days * 86_400
            let z = Int(days) + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let day = doy - (153 * mp + 2) / 5 + 1
            let month = mp < 10 ? mp + 3 : mp - 9
            return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day, second)
        }

        /// `time` moved `months` calendar months on (the day clamped to the month's length).
        public static func adding(months: Int, to time: Int64) -> Int64 {
            let (year, month, day, second) = parts(time)
            let index = year * 12 + (month - 1) + months
            let (y, m) = (index / 12, index % 12 + 1)
            return seconds(year: y, month: m, day: min(day, daysIn(year: y, month: m))) + second
        }

        public static func daysIn(year: Int, month: Int) -> Int {
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        }

        /// `2026-11-30 14:05`.
        public static func format(_ time: Int64) -> String {
            let (year, month, day, second) = parts(time)
            return String(format: "%04d-%02d-%02d %02d:%02d", year, month, day, Int(second / 3600), Int(second % 3600 / 60))
        }

        /// Parses `2026-11-30`, `2026-11-30T14:05`, `2026-11-30T14:05:09Z` (UTC).
        public static func parse(_ text: String) -> Int64? {
            let trimmed = text.hasSuffix("Z") ? String(text.dropLast()) : text
            let halves = trimmed.split(separator: "T", maxSplits: 1).map(String.init)
            guard let date = CalendarDate(parsing: halves[0]) else { return nil }
            var seconds = seconds(of: date)
            if halves.count == 2 {
                let clock = halves[1].split(separator: ":").map { Int($0) }
                guard (2...3).contains(clock.count), clock.allSatisfy({ $0 != nil }), let hour = clock[0], let minute = clock[1],
                      (0..<24).contains(hour), (0..<60).contains(minute), (0..<60).contains(clock.count == 3 ? clock[2]! : 0) else { return nil }
                seconds += Int64(hour * 3600 + minute * 60 + (clock.count == 3 ? clock[2]! : 0))
            }
            return seconds
        }
    }
}

/// A calendar month, UTC.
public struct BillingMonth: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var year: Int
    public var month: Int

    public init(year: Int, month: Int) {
        self.year = year
        self.month = month
    }

    /// `2026-11`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let year = Int(parts[0]), let month = Int(parts[1]), (1...12).contains(month) else { return nil }
        self.init(year: year, month: month)
    }

    /// The month `time` falls in.
    public init(containing time: Int64) {
        let parts = Calendar.UTC.parts(time)
        self.init(year: parts.year, month: parts.month)
    }

    public var start: Int64 { Calendar.UTC.seconds(year: year, month: month, day: 1) }
    public var end: Int64 { next.start }
    public var previous: BillingMonth { month == 1 ? BillingMonth(year: year - 1, month: 12) : BillingMonth(year: year, month: month - 1) }
    public var next: BillingMonth { month == 12 ? BillingMonth(year: year + 1, month: 1) : BillingMonth(year: year, month: month + 1) }
    public var description: String { String(format: "%04d-%02d", year, month) }

    public static func < (lhs: BillingMonth, rhs: BillingMonth) -> Bool { (lhs.year, lhs.month) < (rhs.year, rhs.month) }
}
