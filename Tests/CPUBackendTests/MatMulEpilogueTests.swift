import Foundation
import Runtime
import TestSupport
import Testing

@Suite("MatMul epilogues and GELU")
struct MatMulEpilogueTests {
    /// x [2,5,24] (10 rows of 24): h = x W1 + b1 (40 columns: a whole panel and 8), then GELU as models
    /// export it; o = b2 + g W2 (the bias as the Add's first operand), + x (residual), Relu → y. Beside
    /// it: Clip(x W3) to 7 columns with no bias → z; a look-alike of GELU that divides by 1.5, not √2,
    /// which must stay five nodes → u; and a MatMul of two inputs over 12 batches → q.
    static func model(_ values: (Int) -> [Float]) -> ModelSpec {
        ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("MatMul", ["x", "w1"], ["m1"], name: "m1"),
                    NodeSpec("Add", ["m1", "b1"], ["h"], name: "h"),
                    NodeSpec("Mul", ["h", "half"], ["hh"], name: "hh"),
                    NodeSpec("Div", ["h", "sqrt2"], ["hd"], name: "hd"), NodeSpec("Erf", ["hd"], ["he"], name: "he"),
                    NodeSpec("Add", ["one", "he"], ["hp"], name: "hp"),
                    NodeSpec("Mul", ["hp", "hh"], ["g"], name: "g"),
                    NodeSpec("MatMul", ["g", "w2"], ["m2"], name: "m2"),
                    NodeSpec("Add", ["b2", "m2"], ["o"], name: "o"),
                    NodeSpec("Add", ["o", "x"], ["s"], name: "s"), NodeSpec("Relu", ["s"], ["y"], name: "y"),
                    NodeSpec("MatMul", ["x", "w3"], ["m3"], name: "m3"),
                    NodeSpec("Clip", ["m3", "lo", "hi"], ["z"], name: "z"),
                    NodeSpec("Mul", ["x", "half"], ["xh"], name: "xh"),
                    NodeSpec("Div", ["x", "notsqrt2"], ["xd"], name: "xd"), NodeSpec("Erf", ["xd"], ["xe"], name: "xe"),
                    NodeSpec("Add", ["xe", "one"], ["xp"], name: "xp"),
                    NodeSpec("Mul", ["xh", "xp"], ["u"], name: "u"),
                    NodeSpec("MatMul", ["a", "b"], ["q"], name: "q"),
                ],
                inputs: [
                    ValueSpec("x", ElemType.float, [2, 5, 24]), ValueSpec("a", ElemType.float, [3, 4, 6, 5]),
                    ValueSpec("b", ElemType.float, [3, 4, 5, 7]),
                ],
                outputs: [
                    ValueSpec("y", ElemType.float, [2, 5, 24]), ValueSpec("z", ElemType.float, [2, 5, 7]),
                    ValueSpec("u", ElemType.float, [2, 5, 24]), ValueSpec("q", ElemType.float, [3, 4, 6, 7]),
                ],
                initializers: [
                    .float("w1", [24, 40], values(24 * 40)), .float("b1", [40], values(40)),
                    .float("w2", [40, 24], values(40 * 24)), .float("b2", [1, 24], values(24)),
                    .float("w3", [24, 7], values(24 * 7)), .float("half", [], [0.5]), .float("one", [], [1]),
                    .float("sqrt2", [], [Float(2.0.squareRoot())]), .float("notsqrt2", [], [1.5]),
                    .float("lo", [], [-0.25]), .float("hi", [], [0.75]),
                ]))
    }

    /// rows [r][k] times [k][n], in double.
    static func product(_ x: [Double], _ w: [Float], rows: Int, k: Int, n: Int) -> [Double] {
        (0..<rows * n).map { index in
            let (r, j) = (index / n, index % n)
            return (0..<k).reduce(0) { $0 + x[r * k + $1] * Double(w[$1 * n + j]) }
        }
    }

    static func gelu(_ v: Double, divisor: Double = 2.0.squareRoot()) -> Double { 0.5 * v * (1 + erf(v / divisor)) }

    @Test("bias, residual and GELU, Relu or Clip go into the product's stores; the GELU pattern is matched exactly")
    func fused() async throws {
        var random = SeededGenerator(state: 5)
        var weights: [[Float]] = []
        let model = Self.model { count in
            let values = (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
            weights.append(values)
            return values
        }
        let (w1, b1, w2, b2, w3) = (weights[0], weights[1], weights[2], weights[3], weights[4])
        func inputs(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (x, a, b) = (inputs(240), inputs(3 * 4 * 6 * 5), inputs(3 * 4 * 5 * 7))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, in: directory)
        // m1: bias, GELU; m2: bias, residual, Relu; m3: Clip. The look-alike is no kiln::Gelu: its five
        // nodes stay themselves until fuse-elementwise makes them one loop.
        #expect(result.manifest.passesApplied == ["fuse-gelu: 1", "fuse-matmul-epilogue: 6", "fuse-elementwise: 4"])
        #expect(result.manifest.opCountsAfter["kiln::FusedMatMul"] == 3)
        #expect(result.manifest.opCountsAfter["kiln::Gelu"] == nil)
        #expect(result.manifest.opCountsAfter["kiln::FusedElementwise"] == 1)
        let path = try #require(result.artifactPath)
        let outputs = try OpenedArtifact(path: path).loaded.run([bytes(x), bytes(a), bytes(b)]).map(floats)

        let xd = x.map(Double.init)
        let h = zip(Self.product(xd, w1, rows: 10, k: 24, n: 40).enumerated(), [Int](0..<400)).map {
            $0.0.element + Double(b1[$0.0.offset % 40])
        }
        let g = h.map { Self.gelu($0) }
        let o = Self.product(g, w2, rows: 10, k: 40, n: 24).enumerated().map { $0.element + Double(b2[$0.offset % 24]) }
        let y = zip(o, xd).map { max(0, $0 + $1) }
        let z = Self.product(xd, w3, rows: 10, k: 24, n: 7).map { min(0.75, max(-0.25, $0)) }
        let u = xd.map { Self.gelu($0, divisor: 1.5) }
        var q = [Double](repeating: 0, count: 12 * 6 * 7)
        for t in 0..<12 {
            for i in 0..<6 {
                for j in 0..<7 {
                    q[(t * 6 + i) * 7 + j] = (0..<5).reduce(0) {
                        $0 + Double(a[(t * 6 + i) * 5 + $1]) * Double(b[(t * 5 + $1) * 7 + j])
                    }
                }
            }
        }
        for (name, got, expected) in [
            ("y", outputs[0], y), ("z", outputs[1], z), ("u", outputs[2], u), ("q", outputs[3], q),
        ] {
            #expect(got.count == expected.count, "\(name)")
            let scale = max(1, expected.map(abs).max() ?? 0)
            for (index, (value, want)) in zip(got, expected).enumerated() {
                #expect(abs(Double(value) - want) <= 1e-5 * scale, "\(name)[\(index)] = \(value), not \(want)")
            }
        }
        try expectSameBytesOnThreads(path, [bytes(x), bytes(a), bytes(b)])
    }

    @Test("SiLU after a MatMul and its bias goes into the product's stores; one whose input has a third reader stays")
    func silu() async throws {
        var random = SeededGenerator(state: 21)
        func values(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
            (0..<count).map { _ in Float.random(in: range, using: &random) }
        }
        let (w1, b1, w2) = (values(24 * 40), values(40), values(24 * 40))
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("MatMul", ["x", "w1"], ["m1"], name: "m1"),
                    NodeSpec("Add", ["m1", "b1"], ["h"], name: "h"),
                    NodeSpec("Sigmoid", ["h"], ["s"], name: "s"), NodeSpec("Mul", ["s", "h"], ["y"], name: "y"),
                    NodeSpec("MatMul", ["x", "w2"], ["m2"], name: "m2"),
                    NodeSpec("Sigmoid", ["m2"], ["t"], name: "t"), NodeSpec("Mul", ["m2", "t"], ["u"], name: "u"),
                ],
                inputs: [ValueSpec("x", ElemType.float, [2, 5, 24])],
                outputs: [
                    ValueSpec("y", ElemType.float, [2, 5, 40]), ValueSpec("u", ElemType.float, [2, 5, 40]),
                    ValueSpec("m2", ElemType.float, [2, 5, 40]),
                ],
                initializers: [
                    .float("w1", [24, 40], w1), .float("b1", [40], b1), .float("w2", [24, 40], w2),
                ]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied == ["fuse-matmul-epilogue: 2", "fuse-elementwise: 1"])
        #expect(
            result.manifest.opCountsAfter == ["kiln::FusedMatMul": 1, "MatMul": 1, "kiln::FusedElementwise": 1])
        // Inputs up to ±8 take the products through both tails of the sigmoid.
        let x = values(240, -8...8)
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)]).map(floats)
        let xd = x.map(Double.init)
        func silu(_ v: Double) -> Double { v / (1 + exp(-v)) }
        let y = Self.product(xd, w1, rows: 10, k: 24, n: 40).enumerated().map {
            silu($0.element + Double(b1[$0.offset % 40]))
        }
        let m2 = Self.product(xd, w2, rows: 10, k: 24, n: 40)
        expectClose(outputs[0], y.map { Float($0) }, "y")
        expectClose(outputs[1], m2.map { Float(silu($0)) }, "u")
        expectClose(outputs[2], m2.map { Float($0) }, "m2")
    }
}
