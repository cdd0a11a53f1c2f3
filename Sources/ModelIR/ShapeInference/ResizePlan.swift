import Diagnostics

/// What a Resize node does, read from its attributes and constant inputs:
/// the output shape (for shape inference) and, per axis, the scale used to
/// map output coordinates back to input ones (for lowering).
public struct ResizePlan: Sendable {
    public var inputShape: [Int]
    public var outputShape: [Int]
    /// Per axis: the scale of the coordinate transformation (1 for axes not resized).
    public var scales: [Double]
    /// tf_crop_and_resize's region of interest per axis (start, end), normalised.
    public var roi: [(Double, Double)]

    public init(context c: ShapeContext) throws {
        let x = c.shape(0)
        inputShape = x
        let rank = x.count
        let opset = c.opset
        var axes = Array(0..<rank)
        if let given = c.node.ints("axes") { axes = try given.map { try c.axis($0, rank: rank) } }
        func floats(_ slot: Int) -> [Double]? {
            guard c.has(slot), slot < c.inputConstants.count, let constant = c.inputConstants[slot] else { return nil }
            return constant.doubles()
        }
        let scalesSlot = opset >= 11 ? 2 : 1
        let sizesSlot = 3
        var scales = Array(repeating: 1.0, count: rank)
        var output = x
        let sizes =
            opset >= 11 && c.has(sizesSlot)
            ? c.value(sizesSlot)?.values ?? c.inputConstants[sizesSlot]?.integers() : nil
        if c.has(sizesSlot) && opset >= 11 && sizes == nil {
            throw c.fail("its sizes (input \(sizesSlot)) are computed at run time; Kiln needs them at compile time")
        }
        if let sizes, !sizes.isEmpty {
            guard sizes.count == axes.count else {
                throw c.fail("sizes has \(sizes.count) values for \(axes.count) axes")
            }
            let policy = c.node.string("keep_aspect_ratio_policy") ?? "stretch"
            if policy == "stretch" {
                for (k, axis) in axes.enumerated() {
                    output[axis] = sizes[k]
                    scales[axis] = x[axis] == 0 ? 1 : Double(sizes[k]) / Double(x[axis])
                }
            } else {
                let ratios = axes.enumerated().map { Double(sizes[$0.offset]) / Double(max(x[$0.element], 1)) }
                let scale = policy == "not_larger" ? ratios.min()! : ratios.max()!
                for axis in axes {
                    scales[axis] = scale
                    output[axis] = Int((Double(x[axis]) * scale + 0.5).rounded(.down))
                }
            }
        } else {
            guard let given = floats(scalesSlot), !given.isEmpty else {
                throw c.fail("its scales are computed at run time (or missing); Kiln needs them at compile time")
            }
            guard given.count == axes.count else {
                throw c.fail("scales has \(given.count) values for \(axes.count) axes")
            }
            for (k, axis) in axes.enumerated() {
                guard given[k] > 0 else { throw c.fail("scale \(given[k]) is not positive") }
                scales[axis] = given[k]
                output[axis] = Int((Double(x[axis]) * given[k]).rounded(.down))
            }
        }
        guard output.allSatisfy({ $0 >= 0 }) else { throw c.fail("the output shape would be negative") }
        outputShape = output
        self.scales = scales
        var roi = Array(repeating: (0.0, 1.0), count: rank)
        if opset >= 11, let values = floats(1), values.count == axes.count * 2 {
            for (k, axis) in axes.enumerated() { roi[axis] = (values[k], values[k + axes.count]) }
        }
        self.roi = roi
    }
}
