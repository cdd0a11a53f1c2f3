/// One dimension of a tensor shape as a model declares it: a number, a
/// named symbol bound later by DataInputConfig, or nothing at all.
public enum Dimension: Hashable, Sendable, CustomStringConvertible {
    case value(Int)
    case symbol(String)
    case unknown

    public var value: Int? {
        if case .value(let value) = self { return value }
        return nil
    }

    public var description: String {
        switch self {
        case .value(let value): return String(value)
        case .symbol(let name): return name
        case .unknown: return "?"
        }
    }
}

/// The type of a tensor value: element type and (possibly partial) shape.
/// After the check stage every tensor's shape is static.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var dataType: DataType
    /// nil when not even the rank is known.
    public var shape: [Dimension]?

    public init(_ dataType: DataType, _ shape: [Dimension]?) {
        self.dataType = dataType
        self.shape = shape
    }

    public init(_ dataType: DataType, static dims: [Int]) {
        self.init(dataType, dims.map { .value($0) })
    }

    /// The shape as numbers, or nil while any dimension is not a number.
    public var staticShape: [Int]? {
        guard let shape else { return nil }
        var dims: [Int] = []
        for dim in shape {
            guard let value = dim.value else { return nil }
            dims.append(value)
        }
        return dims
    }

    public var description: String {
        "\(dataType.name)\(shapeText(shape))"
    }
}

/// "[1,3,224,224]", "[N,3,?,?]", or "[?...]" for an unknown rank.
public func shapeText(_ shape: [Dimension]?) -> String {
    guard let shape else { return "[?...]" }
    return "[" + shape.map(\.description).joined(separator: ",") + "]"
}

public func shapeText(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ",") + "]"
}

/// Row-major strides of a static shape, in elements (the last axis 1).
public func rowMajorStrides(_ shape: [Int]) -> [Int] {
    var result = Array(repeating: 1, count: shape.count)
    var step = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        result[axis] = step
        step *= shape[axis]
    }
    return result
}

/// The element count of a static shape, or nil on overflow.
public func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: dim)
        if overflow { return nil }
        count = product
    }
    return count
}
