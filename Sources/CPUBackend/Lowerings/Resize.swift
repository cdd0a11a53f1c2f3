import Diagnostics
import Foundation
import ModelIR

/// Resize (and the Upsample it replaced): every output coordinate is mapped
/// back to the input with ONNX's coordinate transformation, and the taps of
/// nearest, linear or cubic interpolation are tabulated per axis at compile time.
enum ResizeLowering {
    static func lower(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let context = ShapeContext(
            node: node, nodeIndex: index, opset: c.opset,
            inputTypes: node.inputs.map { $0.flatMap { c.graph[$0].type } },
            inputValues: node.inputs.map { id in
                id.flatMap { c.graph.initializers[$0] }.flatMap { constant in
                    constant.dataType.isInteger
                        ? constant.integers().map { KnownInts(shape: constant.shape, values: $0) } : nil
                }
            },
            inputConstants: node.inputs.map { $0.flatMap { c.graph.initializers[$0] } })
        let plan = try ResizePlan(context: context)
        if node.int("antialias") == 1 { throw c.notImplemented(node, index, "Resize with antialias") }
        let mode = node.string("mode") ?? "nearest"
        let transform = c.opset >= 11 ? (node.string("coordinate_transformation_mode") ?? "half_pixel") : "asymmetric"
        let nearestMode = c.opset >= 11 ? (node.string("nearest_mode") ?? "round_prefer_floor") : "floor"
        let a = Double(node.float("cubic_coeff_a") ?? -0.75)
        let excludeOutside = node.int("exclude_outside") == 1
        guard ["nearest", "linear", "cubic"].contains(mode) else {
            throw c.notImplemented(node, index, "Resize mode \(quoted(mode))")
        }
        let transforms = [
            "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
            "tf_crop_and_resize",
        ]
        guard transforms.contains(transform) else {
            throw c.notImplemented(node, index, "coordinate_transformation_mode \(quoted(transform))")
        }
        let rank = plan.inputShape.count
        var taps: [Int] = []
        var indexes: [Int] = []
        var weights: [Float] = []
        for axis in 0..<rank {
            let input = plan.inputShape[axis]
            let output = plan.outputShape[axis]
            let scale = plan.scales[axis]
            let resized = input != output || scale != 1 || transform == "tf_crop_and_resize"
            let count = !resized ? 1 : mode == "nearest" ? 1 : mode == "linear" ? 2 : 4
            taps.append(count)
            for o in 0..<output {
                guard resized else {
                    indexes.append(o)
                    weights.append(1)
                    continue
                }
                let xo = Double(o)
                var source: Double
                switch transform {
                case "half_pixel": source = (xo + 0.5) / scale - 0.5
                case "pytorch_half_pixel": source = output > 1 ? (xo + 0.5) / scale - 0.5 : 0
                case "align_corners":
                    // The resized length is input × scale, fractional when scales (not sizes) were given.
                    let length = Double(input) * scale
                    source = length <= 1 ? 0 : xo * Double(input - 1) / (length - 1)
                case "asymmetric": source = xo / scale
                case "half_pixel_symmetric":
                    let adjustment = Double(output) / (scale * Double(input))
                    let center = Double(input) / 2
                    source = center * (1 - adjustment) + (xo + 0.5) / scale - 0.5
                default:  // tf_crop_and_resize
                    let (start, end) = plan.roi[axis]
                    source =
                        output > 1
                        ? start * Double(input - 1) + xo * (end - start) * Double(input - 1) / Double(output - 1)
                        : 0.5 * (start + end) * Double(input - 1)
                }
                if transform == "tf_crop_and_resize" && (source < 0 || source > Double(input - 1)) {
                    for _ in 0..<count {
                        indexes.append(-1)
                        weights.append(0)
                    }
                    continue
                }
                func clamp(_ i: Int) -> Int { min(max(i, 0), input - 1) }
                switch mode {
                case "nearest":
                    var chosen: Double
                    switch nearestMode {
                    case "round_prefer_ceil":
                        chosen = (source - source.rounded(.down)) == 0.5 ? source.rounded(.up) : source.rounded()
                    case "floor": chosen = source.rounded(.down)
                    case "ceil": chosen = source.rounded(.up)
                    default: chosen = (source - source.rounded(.down)) == 0.5 ? source.rounded(.down) : source.rounded()
                    }
                    indexes.append(clamp(Int(chosen)))
                    weights.append(1)
                case "linear":
                    let base = source.rounded(.down)
                    let ratio = source - base
                    indexes += [clamp(Int(base)), clamp(Int(base) + 1)]
                    weights += [Float(1 - ratio), Float(ratio)]
                default:  // cubic
                    let base = source.rounded(.down)
                    let r = source - base
                    var coefficients = [
                        ((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                        ((a + 2) * r - (a + 3)) * r * r + 1,
                        ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                        ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a,
                    ]
                    let neighbours = (-1...2).map { Int(base) + $0 }
                    if excludeOutside {
                        for (k, neighbour) in neighbours.enumerated() where neighbour < 0 || neighbour >= input {
                            coefficients[k] = 0
                        }
                        let total = coefficients.reduce(0, +)
                        if total != 0 { coefficients = coefficients.map { $0 / total } }
                    }
                    indexes += neighbours.map(clamp)
                    weights += coefficients.map(Float.init)
                }
            }
        }
        let extrapolation = CSource.float(node.float("extrapolation_value") ?? 0)
        c.emit(
            "  { static const size_t di[] = \(CSource.sizes(plan.inputShape)), dout[] = \(CSource.sizes(plan.outputShape)), t[] = \(CSource.sizes(taps));"
        )
        c.emit(
            "    static const int64_t idx[] = {\(indexes.isEmpty ? "0" : indexes.map(String.init).joined(separator: ","))};"
        )
        c.emit(
            "    static const float w[] = {\(weights.isEmpty ? "0" : weights.map { CSource.float($0) }.joined(separator: ","))};"
        )
        c.emit(
            "    KK(resize_f32)(\(c.pointer(x)), \(c.pointer(y)), \(rank), di, dout, t, idx, w, \(extrapolation)); }")
    }
}
