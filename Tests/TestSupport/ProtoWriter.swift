/// Writes protobuf wire format by hand, so tests can build ONNX models
/// (including malformed ones) as readable Swift values.
public struct ProtoWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    public mutating func int(_ field: Int, _ value: Int) {
        tag(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    public mutating func float(_ field: Int, _ value: Float) {
        tag(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func bytes(_ field: Int, _ value: [UInt8]) {
        tag(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    public mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        bytes(field, inner.bytes)
    }

    public mutating func packedInts(_ field: Int, _ values: [Int]) {
        var inner = ProtoWriter()
        for value in values { inner.varint(UInt64(bitPattern: Int64(value))) }
        bytes(field, inner.bytes)
    }

    public mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var inner: [UInt8] = []
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { inner.append(contentsOf: $0) } }
        bytes(field, inner)
    }
}
