import Foundation
import ModelIR

/// Spelling things in generated C: types, literals, and model strings made
/// safe. Model-supplied text only ever reaches C through `stringLiteral` or
/// `comment`, never as code or identifiers.
enum CSource {
    /// The C type of an element; nil for types the backend does not compute in.
    static func type(_ dataType: DataType) -> String? {
        switch dataType {
        case .float32: return "float"
        case .float64: return "double"
        case .int8: return "int8_t"
        case .int16: return "int16_t"
        case .int32: return "int32_t"
        case .int64: return "int64_t"
        case .uint8: return "uint8_t"
        case .uint16: return "uint16_t"
        case .uint32: return "uint32_t"
        case .uint64: return "uint64_t"
        case .bool: return "uint8_t"
        // Storage and conversion only: ops other than Cast and data movement refuse float16.
        case .float16: return "_Float16"
        default: return nil
        }
    }

    /// A C string literal holding `text`'s bytes exactly: every byte outside
    /// printable ASCII, and `"`, `\` and `?` (trigraphs), as an octal escape.
    static func stringLiteral(_ text: String) -> String {
        var result = "\""
        for byte in text.utf8 {
            switch byte {
            case 0x20...0x7E
            where byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "?"):
                result.append(Character(UnicodeScalar(byte)))
            default:
                result += String(format: "\\%03o", byte)
            }
        }
        return result + "\""
    }

    /// Text for inside a `/* */` comment: printable ASCII only, and no `*/`.
    static func comment(_ text: String, limit: Int = 80) -> String {
        var result = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            result += (0x20...0x7E).contains(scalar.value) ? String(scalar) : "?"
        }
        while result.contains("*/") { result = result.replacingOccurrences(of: "*/", with: "*_/") }
        while result.contains("/*") { result = result.replacingOccurrences(of: "/*", with: "/_*") }
        if result.hasSuffix("*") || result.hasSuffix("/") { result += " " }
        return result
    }

    /// An exact float literal (hexadecimal), with inf and nan spelled portably.
    static func float(_ value: Float) -> String {
        if value.isNaN { return "(0.0f/0.0f)" }
        if value.isInfinite { return value < 0 ? "(-1.0f/0.0f)" : "(1.0f/0.0f)" }
        return String(format: "%af", Double(value))
    }

    static func double(_ value: Double) -> String {
        if value.isNaN { return "(0.0/0.0)" }
        if value.isInfinite { return value < 0 ? "(-1.0/0.0)" : "(1.0/0.0)" }
        return String(format: "%a", value)
    }

    /// A literal of `value` as the element type `dataType`.
    static func literal(_ value: Double, as dataType: DataType) -> String {
        switch dataType {
        case .float32: return float(Float(value))
        case .float64: return double(value)
        case .bool: return value != 0 ? "1" : "0"
        case .int64: return "INT64_C(\(Int64(value)))"
        case .uint64: return "UINT64_C(\(UInt64(max(0, value))))"
        default: return "(\(type(dataType) ?? "int"))\(Int64(value))"
        }
    }

    static func sizes(_ values: [Int]) -> String {
        "{" + (values.isEmpty ? "0" : values.map { "\($0)" }.joined(separator: ", ")) + "}"
    }
}
