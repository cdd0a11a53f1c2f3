import Foundation

/// The API's JSON: member names in AWS's PascalCase, timestamps as epoch
/// seconds on the wire (AWS JSON 1.1), and the aws CLI's printed form
/// (`cliText`: ISO 8601 with an offset, 4-space indent, members in botocore's
/// model order).
public enum AWSJSON {
    /// The wire encoder: PascalCase members, timestamps as epoch seconds (milliseconds kept).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .custom { path in
            AnyKey(pascalCase(path.last!.stringValue))
        }
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode((date.timeIntervalSince1970 * 1000).rounded() / 1000)
        }
        return encoder
    }

    /// Accepts epoch seconds (numbers) and ISO 8601 strings for timestamps, as the aws CLI does.
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in AnyKey(camelCase(path.last!.stringValue)) }
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            if let seconds = try? container.decode(Double.self) { return Date(timeIntervalSince1970: seconds) }
            let text = try container.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "'\(text)' is not a timestamp (epoch seconds or ISO 8601)")
            }
            return date
        }
        return decoder
    }

    /// "2026-11-29T10:15:30.123000+00:00": Python's isoformat, which the aws CLI prints.
    public static func isoTimestamp(_ date: Date, timeZone: TimeZone = .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let whole = date.timeIntervalSince1970.rounded(.down)
        let micros = Int(((date.timeIntervalSince1970 - whole) * 1_000_000).rounded(.down))
        let offset = timeZone.secondsFromGMT(for: date)
        let sign = offset < 0 ? "-" : "+"
        var text = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!,
            parts.second!)
        if micros > 0 { text += String(format: ".%06d", micros) }
        return text + String(format: "%@%02d:%02d", sign, abs(offset) / 3600, abs(offset) % 3600 / 60)
    }

    static func parseTimestamp(_ text: String) -> Date? {
        if let seconds = Double(text) { return Date(timeIntervalSince1970: seconds) }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        // Python-style six fractional digits, which ISO8601DateFormatter refuses.
        if let dot = text.firstIndex(of: "."),
            let zone = text[dot...].firstIndex(where: { $0 == "+" || $0 == "-" || $0 == "Z" })
        {
            formatter.formatOptions = [.withInternetDateTime]
            let fraction = Double("0" + text[dot..<zone]) ?? 0
            return formatter.date(from: String(text[..<dot]) + String(text[zone...]))?.addingTimeInterval(fraction)
        }
        return nil
    }

    /// A response as the aws CLI prints it: members in the order the API shapes declare them (botocore's
    /// model order, which the CLI keeps), absent optionals left out, ISO 8601 timestamps, indent 4.
    public static func cliText(_ value: Any) -> String {
        func literal(_ text: String) -> String {
            String(decoding: (try? JSONEncoder().encode(text)) ?? Data(), as: UTF8.self)
                .replacingOccurrences(of: "\\/", with: "/")
        }
        func render(_ value: Any, _ depth: Int) -> String? {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                guard let wrapped = mirror.children.first?.value else { return nil }
                return render(wrapped, depth)
            }
            switch value {
            case let text as String: return literal(text)
            case let date as Date: return literal(isoTimestamp(date))
            case let flag as Bool: return flag ? "true" : "false"
            case let number as Int: return String(number)
            case let number as Double: return String(number)
            default: break
            }
            let indent = String(repeating: " ", count: (depth + 1) * 4)
            let closing = String(repeating: " ", count: depth * 4)
            if mirror.displayStyle == .collection {
                let items = mirror.children.compactMap { render($0.value, depth + 1) }
                return items.isEmpty
                    ? "[]" : "[\n" + items.map { indent + $0 }.joined(separator: ",\n") + "\n\(closing)]"
            }
            let members = mirror.children.compactMap { child -> String? in
                guard let label = child.label, let text = render(child.value, depth + 1) else { return nil }
                return indent + literal(pascalCase(label)) + ": " + text
            }
            return members.isEmpty ? "{}" : "{\n" + members.joined(separator: ",\n") + "\n\(closing)}"
        }
        return render(value, 0) ?? "{}"
    }

    /// Why a request did not decode, naming the member as the API spells it ("at InputConfig.S3Uri: ...").
    public static func describe(decodingError error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context), DecodingError.keyNotFound(_, let context):
            let path = context.codingPath.map { pascalCase($0.stringValue) }.joined(separator: ".")
            return (path.isEmpty ? "" : "at \(path): ") + context.debugDescription
        default:
            return "\(error)"
        }
    }

    public static func pascalCase(_ key: String) -> String { key.prefix(1).uppercased() + key.dropFirst() }
    static func camelCase(_ key: String) -> String { key.prefix(1).lowercased() + key.dropFirst() }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) {
            stringValue = String(intValue)
            self.intValue = intValue
        }
    }
}
