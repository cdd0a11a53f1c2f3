import Diagnostics
import Foundation
import ModelIR

/// NumPy `.npy` files (format 1.0–3.0, little-endian, C order): how `kiln run`
/// takes inputs and writes outputs.
public struct NPYArray: Equatable, Sendable {
    public var dataType: DataType
    public var shape: [Int]
    public var data: Data

    public init(dataType: DataType, shape: [Int], data: Data) {
        self.dataType = dataType
        self.shape = shape
        self.data = data
    }

    static let descriptors: [String: DataType] = [
        "<f4": .float32, "<f8": .float64, "<f2": .float16, "|i1": .int8, "<i2": .int16, "<i4": .int32, "<i8": .int64,
        "|u1": .uint8, "<u2": .uint16, "<u4": .uint32, "<u8": .uint64, "|b1": .bool,
    ]

    public static func read(path: String) throws -> NPYArray {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw KilnError.client(.dataInputConfig, "cannot read \(path)")
        }
        return try parse(bytes, name: path)
    }

    public static func parse(_ bytes: Data, name: String) throws -> NPYArray {
        let invalid = KilnError.client(.dataInputConfig, "\(name) is not a NumPy .npy file")
        guard bytes.count >= 10, bytes.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else { throw invalid }
        let major = bytes[bytes.startIndex + 6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(bytes[bytes.startIndex + 8]) | Int(bytes[bytes.startIndex + 9]) << 8
            headerStart = 10
        } else {
            guard bytes.count >= 12 else { throw invalid }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[bytes.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard bytes.count >= headerStart + headerLength else { throw invalid }
        let header = String(
            decoding: bytes[(bytes.startIndex + headerStart)..<(bytes.startIndex + headerStart + headerLength)],
            as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descr = field("descr"), let quoteEnd = descr.dropFirst().firstIndex(of: "'") else { throw invalid }
        let code = String(descr[descr.index(after: descr.startIndex)..<quoteEnd])
        guard let dataType = descriptors[code] ?? descriptors[code.replacingOccurrences(of: "=", with: "<")] else {
            throw KilnError.client(.dataInputConfig, "\(name) holds dtype \(code), which Kiln does not read")
        }
        if field("fortran_order")?.hasPrefix("True") == true {
            throw KilnError.client(
                .dataInputConfig, "\(name) is in Fortran order; save it C-ordered (np.ascontiguousarray)")
        }
        guard let shapeText = field("shape"), let open = shapeText.firstIndex(of: "("),
            let close = shapeText.firstIndex(of: ")")
        else { throw invalid }
        let shape = try shapeText[shapeText.index(after: open)..<close].split(separator: ",").compactMap {
            part -> Int? in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return nil }
            guard let value = Int(trimmed), value >= 0 else { throw invalid }
            return value
        }
        let payload = bytes.suffix(from: bytes.startIndex + headerStart + headerLength)
        let expected = (elementCount(shape) ?? 0) * (dataType.byteSize ?? 1)
        guard payload.count == expected else {
            throw KilnError.client(
                .dataInputConfig, "\(name) holds \(payload.count) bytes of data; shape \(shapeText) needs \(expected)")
        }
        return NPYArray(dataType: dataType, shape: shape, data: Data(payload))
    }

    public func encoded() -> Data {
        let code = Self.descriptors.first { $0.value == dataType }?.key ?? "<f4"
        let shapeText =
            shape.isEmpty
            ? "()" : shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(code)', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var result = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = header.utf8.count
        result.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        result.append(contentsOf: Array(header.utf8))
        result.append(data)
        return result
    }
}
