import Foundation

/// The accepted forms of an event's `timestamp`, normalised to milliseconds since the epoch (UTC):
/// - a number of seconds, with or without a fraction (`1736935200.48`);
/// - a number of milliseconds (`1736935200480`): any number from 10^11 up, which as seconds would
///   be past the year 5000;
/// - an RFC 3339 string (`2025-01-15T10:00:00.48Z`, `2025-01-15T11:00:00+01:00`).
/// Anything else (numeric strings, dates without a zone, times before 1970 or after 9999) is refused,
/// so no accepted sample is ever left out of the rollups.
enum EventTime {
    static let millisecondsFrom = 1e11
    static let latest = 253_402_300_799_999.0  // 9999-12-31T23:59:59.999Z, in milliseconds

    /// Milliseconds since the epoch, or why the value is not an accepted timestamp.
    static func milliseconds(number: Double) -> Result<Int64, EventTimeError> {
        let ms = number >= millisecondsFrom ? number : number * 1000
        guard number > 0, ms <= latest else { return .failure(EventTimeError("timestamp \(number) is outside 1970-9999")) }
        return .success(Int64(ms.rounded()))
    }

    /// Milliseconds since the epoch of an RFC 3339 date-time, or why it is not one.
    static func milliseconds(rfc3339 text: String) -> Result<Int64, EventTimeError> {
        let refused = EventTimeError("timestamp '\(text.prefix(40))' is not epoch seconds, epoch milliseconds or an RFC 3339 date-time")
        let b = Array(text.utf8)
        func int(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var value = 0
            for i in range {
                guard (48...57).contains(b[i]) else { return nil }
                value = value * 10 + Int(b[i] - 48)
            }
            return value
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116 || b[10] == 32, b[13] == 58, b[16] == 58,
              let year = int(0..<4), let month = int(5..<7), let day = int(8..<10),
              let hour = int(11..<13), let minute = int(14..<16), let second = int(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60 else { return .failure(refused) }
        var i = 19
        var fraction = 0.0
        if b[i] == 46 {
            var scale = 0.1
            i += 1
            let start = i
            while i < b.count, (48...57).contains(b[i]) { fraction += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
            guard i > start else { return .failure(refused) }
        }
        var offset = 0
        guard i < b.count else { return .failure(refused) }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let h = int((i + 1)..<(i + 3)), i + 3 < b.count, b[i + 3] == 58,
                  let m = int((i + 4)..<(i + 6)), h < 24, m < 60 {
            offset = (h * 60 + m) * 60 * (b[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return .failure(refused)
        }
        guard i == b.count else { return .failure(refused) }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset) + fraction
        return milliseconds(number: seconds < millisecondsFrom ? seconds : Double.infinity)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// Why a timestamp is refused.
struct EventTimeError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
