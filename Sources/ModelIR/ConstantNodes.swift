/// What the ops that need no data compute, known at compile time: shared by the constant-folding pass
/// and the backend's folding of what no pass touched.
extension Node {
    /// A `Constant` node's value (any of its value attributes); nil when it has none Kiln reads.
    public var constantValue: Constant? {
        if let tensor = tensor("value") { return tensor }
        if let value = int("value_int") { return Constant(.int64, shape: [], values: [Int64(value)]) }
        if let values = ints("value_ints") {
            return Constant(.int64, shape: [values.count], values: values.map(Int64.init))
        }
        if let value = float("value_float") { return Constant(float32: [value], shape: []) }
        if case .floats(let values)? = attributes["value_floats"] {
            return Constant(float32: values, shape: [values.count])
        }
        return nil
    }

    /// A `Shape` node's (its `start`/`end` slice of `dims`) or a `Size` node's value, for an input of static
    /// shape `dims`, as `type` (int64).
    public func shapeValue(of dims: [Int], type: DataType = .int64) -> Constant? {
        if opType == "Size" { return elementCount(dims).flatMap { Constant(integers: [$0], type: type, shape: []) } }
        let rank = dims.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + rank : v, 0), rank) }
        let (start, end) = (clamp(int("start") ?? 0), clamp(int("end") ?? rank))
        let slice = start < end ? Array(dims[start..<end]) : []
        return Constant(integers: slice, type: type, shape: [slice.count])
    }
}
