import Diagnostics

/// Ops whose output shape depends on input values (NonZero, Compress, Unique): static when the values that
/// decide the shape are known at compile time (constants, or shape arithmetic), refused with a reason otherwise.
/// Known integer outputs are computed here, so the check stage folds them into constants.
extension ShapeRules {
    static func addDataDependentRules(_ table: inout [String: ShapeRule]) {
        table["NonZero"] = nonZero
        table["Compress"] = compress
        table["Unique"] = unique
    }

    /// An input's values when known at compile time: shape arithmetic, or a constant of any numeric type.
    static func knownNumbers(_ c: ShapeContext, _ slot: Int) -> [Double]? {
        if let value = c.value(slot) { return value.values.map(Double.init) }
        guard slot < c.inputConstants.count, let constant = c.inputConstants[slot] else { return nil }
        return constant.doubles()
    }

    static func dataDependent(_ c: ShapeContext, _ what: String) -> KilnError {
        c.fail(
            "the output shape of \(c.node.opType) depends on \(what), which this model computes at run time; Kiln compiles "
                + "\(c.node.opType) only when they are known at compile time (constants, or fixed with DataInputConfig's {\"value\": ...})"
        )
    }

    static func nonZero(_ c: ShapeContext) throws -> [InferredOutput] {
        guard let values = knownNumbers(c, 0) else { throw dataDependent(c, "the values of its input") }
        let shape = c.shape(0)
        var coordinates: [[Int]] = Array(repeating: [], count: shape.count)
        for (flat, value) in values.enumerated() where value != 0 {
            var rest = flat
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                coordinates[axis].append(rest % shape[axis])
                rest /= shape[axis]
            }
        }
        let count = shape.isEmpty ? (values.first.map { $0 != 0 ? 1 : 0 } ?? 0) : coordinates[0].count
        return [
            InferredOutput(
                .int64, [shape.count, count],
                values: KnownInts(shape: [shape.count, count], values: coordinates.flatMap { $0 }))
        ]
    }

    static func compress(_ c: ShapeContext) throws -> [InferredOutput] {
        guard let condition = knownNumbers(c, 1) else { throw dataDependent(c, "the values of its condition") }
        let x = c.shape(0)
        let kept = condition.filter { $0 != 0 }.count
        var shape: [Int]
        var values: KnownInts?
        if let rawAxis = c.node.int("axis") {
            let axis = try c.axis(rawAxis, rank: x.count)
            guard condition.count <= x[axis] else {
                throw c.fail("the condition has \(condition.count) entries for an axis of \(x[axis])")
            }
            shape = x
            shape[axis] = kept
        } else {
            shape = [kept]
            guard condition.count <= (elementCount(x) ?? 0) else {
                throw c.fail("the condition has \(condition.count) entries for \(elementCount(x) ?? 0) elements")
            }
            if let input = c.value(0) {
                values = .vector(zip(input.values, condition).filter { $0.1 != 0 }.map(\.0))
            }
        }
        return [InferredOutput(c.dataType(0), shape, values: values)]
    }

    /// Unique over the flattened input (sorted or in order of first appearance), for known integer inputs.
    static func unique(_ c: ShapeContext) throws -> [InferredOutput] {
        guard c.node.int("axis") == nil else {
            throw c.fail("Unique along an axis is not supported (only over the flattened input)")
        }
        guard let values = c.value(0)?.values else { throw dataDependent(c, "the values of its (integer) input") }
        var order: [Int] = []
        var first: [Int: Int] = [:]
        var counts: [Int: Int] = [:]
        for (position, value) in values.enumerated() {
            if first[value] == nil {
                first[value] = position
                order.append(value)
            }
            counts[value, default: 0] += 1
        }
        if (c.node.int("sorted") ?? 1) != 0 { order.sort() }
        let slot = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        let n = order.count
        return [
            InferredOutput(c.dataType(0), [n], values: .vector(order)),
            InferredOutput(.int64, [n], values: .vector(order.map { first[$0]! })),
            InferredOutput(.int64, [values.count], values: .vector(values.map { slot[$0]! })),
            InferredOutput(.int64, [n], values: .vector(order.map { counts[$0]! })),
        ]
    }
}
