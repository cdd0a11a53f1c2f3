/// A JSON value as DataInputConfig and CompilerOptions need it: numbers keep
/// whether they were written as integers, so `1.5` or `true` in a shape is
/// caught rather than silently converted.
public indirect enum JSONValue: Equatable, Sendable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case integer(Int)
    case number(Double)
    case bool(Bool)
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

/// Parses JSON, and also the Python-style spelling users paste from the
/// documentation (single-quoted strings); `usedSingleQuotes` says whether it did.
public struct LenientJSONParser {
    public struct Failure: Error, Equatable {
        public var message: String
        public var offset: Int
    }

    private let scalars: [Unicode.Scalar]
    private var position = 0
    public private(set) var usedSingleQuotes = false

    public init(_ text: String) { scalars = Array(text.unicodeScalars) }

    public mutating func parse() throws -> JSONValue {
        skipSpace()
        let value = try parseValue(depth: 0)
        skipSpace()
        guard position == scalars.count else { throw failure("unexpected text after the value") }
        return value
    }

    private func failure(_ message: String) -> Failure {
        Failure(message: "\(message) at character \(position + 1)", offset: position)
    }

    private mutating func skipSpace() {
        while position < scalars.count, [" ", "\t", "\n", "\r"].contains(scalars[position]) { position += 1 }
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < 64 else { throw failure("nesting is too deep") }
        guard position < scalars.count else { throw failure("the text ends where a value was expected") }
        switch scalars[position] {
        case "{": return try parseObject(depth: depth)
        case "[": return try parseArray(depth: depth)
        case "\"", "'": return .string(try parseString())
        case "-", "0"..."9": return try parseNumber()
        default:
            for (word, value) in [("true", JSONValue.bool(true)), ("false", .bool(false)), ("null", .null)] {
                if matches(word) {
                    position += word.unicodeScalars.count
                    return value
                }
            }
            throw failure("unexpected character '\(scalars[position])'")
        }
    }

    private func matches(_ word: String) -> Bool {
        let wordScalars = Array(word.unicodeScalars)
        guard position + wordScalars.count <= scalars.count else { return false }
        return Array(scalars[position..<position + wordScalars.count]) == wordScalars
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        position += 1
        var members: [(String, JSONValue)] = []
        skipSpace()
        if position < scalars.count && scalars[position] == "}" {
            position += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard position < scalars.count, scalars[position] == "\"" || scalars[position] == "'" else {
                throw failure("expected a quoted name")
            }
            let key = try parseString()
            skipSpace()
            guard position < scalars.count, scalars[position] == ":" else { throw failure("expected ':'") }
            position += 1
            skipSpace()
            members.append((key, try parseValue(depth: depth + 1)))
            skipSpace()
            guard position < scalars.count else { throw failure("the text ends inside an object") }
            if scalars[position] == "," {
                position += 1
                continue
            }
            guard scalars[position] == "}" else { throw failure("expected ',' or '}'") }
            position += 1
            return .object(members)
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        position += 1
        var elements: [JSONValue] = []
        skipSpace()
        if position < scalars.count && scalars[position] == "]" {
            position += 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try parseValue(depth: depth + 1))
            skipSpace()
            guard position < scalars.count else { throw failure("the text ends inside a list") }
            if scalars[position] == "," {
                position += 1
                continue
            }
            guard scalars[position] == "]" else { throw failure("expected ',' or ']'") }
            position += 1
            return .array(elements)
        }
    }

    private mutating func parseString() throws -> String {
        let quote = scalars[position]
        if quote == "'" { usedSingleQuotes = true }
        position += 1
        var result = String.UnicodeScalarView()
        while position < scalars.count {
            let scalar = scalars[position]
            position += 1
            if scalar == quote { return String(result) }
            guard scalar == "\\" else {
                result.append(scalar)
                continue
            }
            guard position < scalars.count else { break }
            let escaped = scalars[position]
            position += 1
            switch escaped {
            case "n": result.append("\n")
            case "t": result.append("\t")
            case "r": result.append("\r")
            case "b": result.append("\u{8}")
            case "f": result.append("\u{C}")
            case "u":
                guard position + 4 <= scalars.count,
                    let code = UInt32(String(String.UnicodeScalarView(scalars[position..<position + 4])), radix: 16),
                    let decoded = Unicode.Scalar(code)
                else { throw failure("bad \\u escape") }
                result.append(decoded)
                position += 4
            default: result.append(escaped)
            }
        }
        throw failure("a string is not closed")
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = position
        if scalars[position] == "-" { position += 1 }
        var isInteger = true
        while position < scalars.count {
            let scalar = scalars[position]
            if ("0"..."9").contains(scalar) {
                position += 1
            } else if [".", "e", "E", "+", "-"].contains(scalar) {
                isInteger = false
                position += 1
            } else {
                break
            }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        if isInteger, let value = Int(text) { return .integer(value) }
        guard let value = Double(text) else { throw failure("\(text) is not a number") }
        return .number(value)
    }
}
