/// Bytes of a constant tensor, held where they already are: inside the
/// parsed protobuf, in a mapped external-data file, or in a small owned
/// array. Passes and backends read them without copying a large model again.
public final class TensorStorage: @unchecked Sendable {
    // Immutable after init; `owner` keeps the memory behind `bytes` alive.
    public let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let owned: UnsafeMutableRawBufferPointer?

    /// Borrows `bytes`, which stay valid as long as `owner` lives.
    public init(borrowing bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.bytes = bytes
        self.owner = owner
        self.owned = nil
    }

    /// Copies `bytes` into storage of its own.
    public init(copying bytes: UnsafeRawBufferPointer) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if bytes.count > 0 { buffer.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        self.owned = buffer
        self.bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count])
        self.owner = nil
    }

    public convenience init(_ array: [UInt8]) {
        self.init(copying: array.withUnsafeBytes { $0 })
    }

    deinit { owned?.deallocate() }

    public var count: Int { bytes.count }
}

/// A tensor whose value is known at compile time: an initializer, a
/// `Constant` node's value, or a folded result.
public struct Constant: Sendable {
    public var dataType: DataType
    public var shape: [Int]
    public var storage: TensorStorage

    public init(dataType: DataType, shape: [Int], storage: TensorStorage) {
        self.dataType = dataType
        self.shape = shape
        self.storage = storage
    }

    /// A constant from values of a fixed-width element type.
    public init<T: FixedWidthInteger>(_ dataType: DataType, shape: [Int], values: [T]) {
        self.init(dataType: dataType, shape: shape, storage: values.withUnsafeBytes { TensorStorage(copying: $0) })
    }

    /// A constant of integer (or bool) type `type` from Int values, each truncated to the element width.
    public init?(integers values: [Int], type: DataType, shape: [Int]) {
        switch type {
        case .int64: self.init(.int64, shape: shape, values: values.map { Int64($0) })
        case .int32: self.init(.int32, shape: shape, values: values.map { Int32(truncatingIfNeeded: $0) })
        case .int16: self.init(.int16, shape: shape, values: values.map { Int16(truncatingIfNeeded: $0) })
        case .int8: self.init(.int8, shape: shape, values: values.map { Int8(truncatingIfNeeded: $0) })
        case .uint64: self.init(.uint64, shape: shape, values: values.map { UInt64(truncatingIfNeeded: $0) })
        case .uint32: self.init(.uint32, shape: shape, values: values.map { UInt32(truncatingIfNeeded: $0) })
        case .uint16: self.init(.uint16, shape: shape, values: values.map { UInt16(truncatingIfNeeded: $0) })
        case .uint8, .bool: self.init(type, shape: shape, values: values.map { UInt8(truncatingIfNeeded: $0) })
        default: return nil
        }
    }

    public init(float32 values: [Float], shape: [Int]) {
        self.init(dataType: .float32, shape: shape, storage: values.withUnsafeBytes { TensorStorage(copying: $0) })
    }

    public var elementCount: Int { ModelIR.elementCount(shape) ?? 0 }

    /// The elements read as integers (any integer or bool type), for shape arithmetic.
    public func integers() -> [Int]? {
        let bytes = storage.bytes
        let count = elementCount
        func read<T: FixedWidthInteger>(_: T.Type) -> [Int]? {
            guard bytes.count >= count * MemoryLayout<T>.size else { return nil }
            return (0..<count).map {
                Int(truncatingIfNeeded: bytes.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
        switch dataType {
        case .int64: return read(Int64.self)
        case .int32: return read(Int32.self)
        case .int16: return read(Int16.self)
        case .int8: return read(Int8.self)
        case .uint8, .bool: return read(UInt8.self)
        case .uint16: return read(UInt16.self)
        case .uint32: return read(UInt32.self)
        case .uint64: return read(UInt64.self)
        default: return nil
        }
    }

    /// The elements read as Double (float types), for small scalar attributes-as-inputs.
    public func doubles() -> [Double]? {
        let bytes = storage.bytes
        let count = elementCount
        switch dataType {
        case .float32:
            guard bytes.count >= count * 4 else { return nil }
            return (0..<count).map { Double(bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self)) }
        case .float64:
            guard bytes.count >= count * 8 else { return nil }
            return (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
        default:
            return integers()?.map(Double.init)
        }
    }
}
