import Diagnostics
import ModelIR

/// Einsum as one loop nest over its letters, Det by LU decomposition, and
/// the signal windows (Hann, Hamming, Blackman), computed in double.
enum LinearAlgebraLowerings {
    static func lowerEinsum(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let operands = node.inputs.compactMap { $0 }
        let equation = try EinsumEquation(node.string("equation") ?? "", shapes: operands.map { c.shape($0) })
        let letters = equation.output + equation.summed
        let variable = Dictionary(uniqueKeysWithValues: letters.enumerated().map { ($0.element, "e\($0.offset)") })
        func flatIndex(_ axes: [Character], _ shape: [Int]) -> String {
            let strides = rowMajorStrides(shape)
            let terms = zip(axes, shape).enumerated().compactMap { axis, pair -> String? in
                let (letter, dim) = pair
                // A size-1 axis broadcasts against the letter's full size.
                if dim == 1 { return nil }
                return "\(variable[letter]!) * \(strides[axis])"
            }
            return terms.isEmpty ? "0" : terms.joined(separator: " + ")
        }
        let py = c.pointer(y)
        let total = c.count(y)
        c.emit("  for (size_t i = 0; i < \(total); i++) \(py)[i] = 0;")
        for (depth, letter) in letters.enumerated() {
            let name = variable[letter]!
            c.emit(
                "  \(String(repeating: " ", count: depth * 2))for (size_t \(name) = 0; \(name) < \(equation.sizes[letter]!); \(name)++)"
            )
        }
        let product = zip(operands, equation.operands).map { operand, axes in
            "\(c.pointer(operand))[\(flatIndex(axes, c.shape(operand)))]"
        }
        c.emit(
            "  \(String(repeating: " ", count: letters.count * 2))\(py)[\(flatIndex(equation.output, c.shape(y)))] += \(product.joined(separator: " * "));"
        )
    }

    /// Det: LU decomposition with partial pivoting of each matrix, in double scratch.
    static func lowerDet(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let n = xs.last ?? 0
        let matrices = xs.dropLast(2).reduce(1, *)
        c.scratchFloats = max(c.scratchFloats, n * n * 2)
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t m = 0; m < \(matrices); m++) { double *a = (double *)S, det = 1;")
        c.emit("    for (size_t k = 0; k < \(n * n); k++) a[k] = \(px)[m * \(n * n) + k];")
        c.emit("    for (size_t col = 0; col < \(n); col++) { size_t pivot = col;")
        c.emit(
            "      for (size_t r = col + 1; r < \(n); r++) if (fabs(a[r * \(n) + col]) > fabs(a[pivot * \(n) + col])) pivot = r;"
        )
        c.emit("      if (a[pivot * \(n) + col] == 0) { det = 0; break; }")
        c.emit(
            "      if (pivot != col) { det = -det; for (size_t k = 0; k < \(n); k++) { double t = a[col * \(n) + k]; a[col * \(n) + k] = a[pivot * \(n) + k]; a[pivot * \(n) + k] = t; } }"
        )
        c.emit("      det *= a[col * \(n) + col];")
        c.emit(
            "      for (size_t r = col + 1; r < \(n); r++) { double f = a[r * \(n) + col] / a[col * \(n) + col]; for (size_t k = col; k < \(n); k++) a[r * \(n) + k] -= f * a[col * \(n) + k]; } }"
        )
        c.emit("    \(py)[m] = (\(c.ctype(y)))det; }")
    }

    /// HannWindow, HammingWindow, BlackmanWindow: a0 - a1 cos(2πn/N) + a2 cos(4πn/N), N = size (periodic) or size - 1.
    static func lowerWindow(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let size = c.count(y)
        let periodic = (node.int("periodic") ?? 1) == 1
        let (a0, a1, a2): (Double, Double, Double)
        switch node.opType {
        case "HannWindow": (a0, a1, a2) = (0.5, 0.5, 0)
        case "HammingWindow": (a0, a1, a2) = (25.0 / 46.0, 1 - 25.0 / 46.0, 0)
        default: (a0, a1, a2) = (0.42, 0.5, 0.08)
        }
        let denominator = CSource.double(Double(periodic ? size : size - 1))
        let py = c.pointer(y)
        c.emit(
            "  for (size_t n = 0; n < \(size); n++) { double t = 6.283185307179586 * (double)n / \(denominator); \(py)[n] = (\(c.ctype(y)))(\(CSource.double(a0)) - \(CSource.double(a1)) * cos(t) + \(CSource.double(a2)) * cos(2 * t)); }"
        )
    }
}
