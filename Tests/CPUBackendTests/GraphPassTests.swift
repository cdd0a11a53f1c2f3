import Foundation
import Pipeline
import Runtime
import TestSupport
import Testing

@Suite("the clean-up passes")
struct GraphPassTests {
    /// x [1,4,6] through what exporters leave behind: Identity then Dropout (no training input); two
    /// Transposes that undo each other; Relu of that applied twice and the two added; Flatten, Reshape to
    /// [4,6] and Unsqueeze back to [1,4,6]; two Transposes that compose to one, [1,2,0]; and a Sigmoid nothing
    /// reads. y = 2 relu(x) in x's own layout, v = x transposed by [2,0,1].
    static let model = ModelSpec(
        graph: GraphSpec(
            nodes: [
                NodeSpec("Identity", ["x"], ["a"], name: "a"),
                NodeSpec("Dropout", ["a"], ["b"], name: "b"),
                NodeSpec("Transpose", ["b"], ["t1"], name: "t1", [("perm", .ints([0, 2, 1]))]),
                NodeSpec("Transpose", ["t1"], ["t2"], name: "t2", [("perm", .ints([0, 2, 1]))]),
                NodeSpec("Relu", ["t2"], ["r1"], name: "r1"),
                NodeSpec("Relu", ["t2"], ["r2"], name: "r2"),
                NodeSpec("Add", ["r1", "r2"], ["s"], name: "s"),
                NodeSpec("Flatten", ["s"], ["f"], name: "f"),
                NodeSpec("Reshape", ["f", "shape46"], ["g"], name: "g"),
                NodeSpec("Unsqueeze", ["g", "axis0"], ["y"], name: "y"),
                NodeSpec("Transpose", ["x"], ["u"], name: "u", [("perm", .ints([0, 2, 1]))]),
                NodeSpec("Transpose", ["u"], ["v"], name: "v", [("perm", .ints([1, 0, 2]))]),
                NodeSpec("Sigmoid", ["x"], ["unread"], name: "unread"),
            ],
            inputs: [ValueSpec("x", ElemType.float, [1, 4, 6])],
            outputs: [
                ValueSpec("y", ElemType.float, [1, 4, 6]), ValueSpec("v", ElemType.float, [6, 1, 4]),
            ],
            initializers: [.int64("shape46", [2], [4, 6]), .int64("axis0", [1], [0])]))

    @Test("drop identities, repeats, undone transposes and dead nodes, and merge reshapes, with the same results")
    func cleanUp() async throws {
        let x = (0..<24).map { Float($0 % 7) - 3 }
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.model, target: native(layout: "NHWC"), in: directory)
        // Identity and Dropout; then u (t1 again, both now of x) and the second Relu; t2 (with t1, the
        // identity), v (composed with t1), g and y (one Reshape each from s); then t1, f, g and the Sigmoid.
        #expect(
            result.manifest.passesApplied == [
                "eliminate-identities: 2", "eliminate-common-subexpressions: 2", "cancel-transposes: 4",
                "eliminate-dead-code: 4",
            ])
        #expect(result.manifest.opCountsAfter["Transpose"] == 1)
        #expect(result.manifest.opCountsAfter["Reshape"] == 1)
        #expect(result.manifest.opCountsAfter["Relu"] == 1)
        for op in ["Identity", "Dropout", "Flatten", "Unsqueeze", "Sigmoid"] {
            #expect(result.manifest.opCountsAfter[op] == nil, "\(op)")
        }
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])
        #expect(floats(outputs[0]) == x.map { 2 * max($0, 0) })
        var transposed = [Float](repeating: 0, count: 24)
        for i in 0..<4 {
            for j in 0..<6 { transposed[j * 4 + i] = x[i * 6 + j] }
        }
        #expect(floats(outputs[1]) == transposed)
    }
}

extension GraphPassTests {
    /// LayerNorm written out, as exporters did before opset 17: over a [2,3,8] input a with Pow and γ, β; over b
    /// with Mul(d, d) and neither; over c along axis 1, which is not a LayerNormalization and must stay.
    static func layerNormModel(gamma: [Float], beta: [Float]) -> ModelSpec {
        var nodes: [NodeSpec] = []
        func decomposed(_ x: String, _ tag: String, axis: Int, square: String) {
            nodes += [
                NodeSpec("ReduceMean", [x], ["\(tag)m"], name: "\(tag)m", [("axes", .ints([axis]))]),
                NodeSpec("Sub", [x, "\(tag)m"], ["\(tag)d"], name: "\(tag)d"),
                square == "Pow"
                    ? NodeSpec("Pow", ["\(tag)d", "two"], ["\(tag)q"], name: "\(tag)q")
                    : NodeSpec("Mul", ["\(tag)d", "\(tag)d"], ["\(tag)q"], name: "\(tag)q"),
                NodeSpec("ReduceMean", ["\(tag)q"], ["\(tag)v"], name: "\(tag)v", [("axes", .ints([axis]))]),
                NodeSpec("Add", ["\(tag)v", "eps"], ["\(tag)e"], name: "\(tag)e"),
                NodeSpec("Sqrt", ["\(tag)e"], ["\(tag)s"], name: "\(tag)s"),
                NodeSpec("Div", ["\(tag)d", "\(tag)s"], ["\(tag)n"], name: "\(tag)n"),
            ]
        }
        decomposed("a", "a", axis: -1, square: "Pow")
        nodes += [
            NodeSpec("Mul", ["an", "gamma"], ["ag"], name: "ag"), NodeSpec("Add", ["beta", "ag"], ["ya"], name: "ya"),
        ]
        decomposed("b", "b", axis: 2, square: "Mul")
        decomposed("c", "c", axis: 1, square: "Pow")
        let shape: [Dim] = [2, 3, 8]
        return ModelSpec(
            opset: 13,
            graph: GraphSpec(
                nodes: nodes,
                inputs: ["a", "b", "c"].map { ValueSpec($0, ElemType.float, shape) },
                outputs: [
                    ValueSpec("ya", ElemType.float, shape), ValueSpec("bn", ElemType.float, shape),
                    ValueSpec("cn", ElemType.float, shape),
                ],
                initializers: [
                    .float("two", [], [2]), .float("eps", [], [1e-5]), .float("gamma", [8], gamma),
                    .float("beta", [8], beta),
                ]))
    }

    @Test("fuses LayerNorm written out over the last axis into one LayerNormalization, with the same results")
    func layerNorm() async throws {
        var random = SeededGenerator(state: 3)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -2...2, using: &random) } }
        let (gamma, beta) = (values(8), values(8))
        let inputs = (0..<3).map { _ in values(48) }
        let directory = try TemporaryDirectory()
        let result = try await compile(
            Self.layerNormModel(gamma: gamma, beta: beta), target: native(layout: "NHWC"), in: directory)
        // c's Add of ε and its Sqrt become one loop (its other steps read a value twice or change shape).
        #expect(result.manifest.passesApplied == ["fuse-layer-norm: 2", "fuse-elementwise: 1"])
        #expect(result.manifest.opCountsAfter["LayerNormalization"] == 2)
        #expect(result.manifest.opCountsAfter["ReduceMean"] == 2, "c's normalization along axis 1 stays")
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run(inputs.map(bytes))
        /// x normalized along `axis` (of [2,3,8]), then scaled and shifted per element of the last axis.
        func reference(_ x: [Float], axis: Int, gamma: [Float]?, beta: [Float]?) -> [Double] {
            let strides = [24, 8, 1]
            let length = [2, 3, 8][axis]
            var y = [Double](repeating: 0, count: 48)
            for start in 0..<48 where start / strides[axis] % length == 0 {
                let at = (0..<length).map { start + $0 * strides[axis] }
                let mean = at.reduce(0.0) { $0 + Double(x[$1]) } / Double(length)
                let variance = at.reduce(0.0) { $0 + (Double(x[$1]) - mean) * (Double(x[$1]) - mean) } / Double(length)
                for i in at {
                    let normalized = (Double(x[i]) - mean) / (variance + 1e-5).squareRoot()
                    y[i] = normalized * Double(gamma?[i % 8] ?? 1) + Double(beta?[i % 8] ?? 0)
                }
            }
            return y
        }
        let expected = [
            reference(inputs[0], axis: 2, gamma: gamma, beta: beta),
            reference(inputs[1], axis: 2, gamma: nil, beta: nil),
            reference(inputs[2], axis: 1, gamma: nil, beta: nil),
        ]
        for (name, (got, want)) in zip(["ya", "bn", "cn"], zip(outputs.map(floats), expected)) {
            #expect(got.count == 48, "\(name)")
            for (value, reference) in zip(got, want) {
                #expect(
                    abs(Double(value) - reference) <= 1e-4 * max(1, abs(reference)),
                    "\(name): \(value), not \(reference)")
            }
        }
    }
}

extension GraphPassTests {
    /// y = x · Transpose(wt) + Where(cond, Gather(Slice(Concat(b, k)), reversed), k), where b = Cast(c16) · k
    /// / √(var + ε) and k is a Constant node: every node of the bias and the weight has constant inputs. z = q
    /// + Expand(1, [200, 100]), an Expand whose result (80,000 bytes) is too large to store for its 20 bytes
    /// of inputs.
    static func foldingModel(wt: [Float], half: [Float16], variance: [Float]) -> ModelSpec {
        ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Transpose", ["wt"], ["w"], name: "w", [("perm", .ints([1, 0]))]),
                    NodeSpec("Cast", ["c16"], ["b0"], name: "b0", [("to", .int(1))]),
                    NodeSpec(
                        "Constant", [], ["k"], name: "k", [("value", .tensor(.float("kv", [6], [1, 2, 3, 4, 5, 6])))]),
                    NodeSpec("Mul", ["b0", "k"], ["b1"], name: "b1"),
                    NodeSpec("Add", ["var", "eps"], ["ve"], name: "ve"),
                    NodeSpec("Sqrt", ["ve"], ["sq"], name: "sq"),
                    NodeSpec("Div", ["b1", "sq"], ["b"], name: "b"),
                    NodeSpec("Concat", ["b", "k"], ["cat"], name: "cat", [("axis", .int(0))]),
                    NodeSpec("Slice", ["cat", "starts", "ends"], ["sl"], name: "sl"),
                    NodeSpec("Gather", ["sl", "idx"], ["g"], name: "g"),
                    NodeSpec("Where", ["cond", "g", "k"], ["h"], name: "h"),
                    NodeSpec("MatMul", ["x", "w"], ["m"], name: "m"),
                    NodeSpec("Add", ["m", "h"], ["y"], name: "y"),
                    NodeSpec("Expand", ["one", "shape"], ["big"], name: "big"),
                    NodeSpec("Add", ["q", "big"], ["z"], name: "z"),
                ],
                inputs: [ValueSpec("x", ElemType.float, [2, 8]), ValueSpec("q", ElemType.float, [200, 100])],
                outputs: [ValueSpec("y", ElemType.float, [2, 6]), ValueSpec("z", ElemType.float, [200, 100])],
                initializers: [
                    .float("wt", [6, 8], wt),
                    TensorSpec(
                        name: "c16", elemType: 10, dims: [6],
                        raw: half.flatMap { value in
                            withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
                        }),
                    .float("var", [6], variance), .float("eps", [], [1e-3]), .int64("starts", [1], [3]),
                    .int64("ends", [1], [9]), .int64("idx", [6], [5, 4, 3, 2, 1, 0]),
                    TensorSpec(name: "cond", elemType: ElemType.bool, dims: [6], raw: [1, 1, 0, 1, 0, 1]),
                    .float("one", [1], [1]), .int64("shape", [2], [200, 100]),
                ]))
    }

    @Test("fold-constants computes the nodes of constant inputs once, so the bias fuses into the product")
    func foldConstants() async throws {
        var random = SeededGenerator(state: 3)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (wt, x, q) = (values(48), values(16), values(20_000))
        let half = values(6).map { Float16($0) }
        let variance = values(6).map { abs($0) + 0.5 }
        let directory = try TemporaryDirectory()
        let result = try await compile(
            Self.foldingModel(wt: wt, half: half, variance: variance), target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied == ["fold-constants: 11", "fuse-matmul-epilogue: 1"])
        #expect(result.manifest.opCountsAfter == ["kiln::FusedMatMul": 1, "Expand": 1, "Add": 1])
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x), bytes(q)])

        let k: [Float] = [1, 2, 3, 4, 5, 6]
        let b = (0..<6).map { Float(half[$0]) * k[$0] / (variance[$0] + 1e-3).squareRoot() }
        let sliced = Array((b + k)[3..<9])
        let gathered = Array(sliced.reversed())
        let h = zip([true, true, false, true, false, true], zip(gathered, k)).map { $0 ? $1.0 : $1.1 }
        var y = [Float](repeating: 0, count: 12)
        for r in 0..<2 {
            for j in 0..<6 {
                y[r * 6 + j] = (0..<8).reduce(0) { $0 + x[r * 8 + $1] * wt[j * 8 + $1] } + h[j]
            }
        }
        expectClose(floats(outputs[0]), y, "y")
        #expect(floats(outputs[1]) == q.map { $0 + 1 })
    }
}

extension GraphPassTests {
    /// Over x [2,16,40,40] (51,200 elements: the loops run on two threads when given them): SiLU,
    /// x · Sigmoid(x) → y1; (LeakyRelu(x + b) · 0.5) − x with b [16,1,1] → y2; Exp(x) read twice, by + 1 → y3
    /// and · 2 → y4 (not merged); x + Neg(v), v [16,1,1] (Neg's output is smaller than the Add's: not merged)
    /// → y5; Tanh(x), itself an output y6, then Abs → y7 (not merged); x and y6 side by side → y8.
    static let elementwiseModel = ModelSpec(
        graph: GraphSpec(
            nodes: [
                NodeSpec("Sigmoid", ["x"], ["s"], name: "s"), NodeSpec("Mul", ["x", "s"], ["y1"], name: "y1"),
                NodeSpec("Add", ["x", "b"], ["a"], name: "a"),
                NodeSpec("LeakyRelu", ["a"], ["l"], name: "l", [("alpha", .float(0.1))]),
                NodeSpec("Mul", ["l", "half"], ["h"], name: "h"), NodeSpec("Sub", ["h", "x"], ["y2"], name: "y2"),
                NodeSpec("Exp", ["x"], ["e"], name: "e"), NodeSpec("Add", ["e", "one"], ["y3"], name: "y3"),
                NodeSpec("Mul", ["e", "two"], ["y4"], name: "y4"),
                NodeSpec("Neg", ["v"], ["n"], name: "n"), NodeSpec("Add", ["x", "n"], ["y5"], name: "y5"),
                NodeSpec("Tanh", ["x"], ["y6"], name: "y6"), NodeSpec("Abs", ["y6"], ["y7"], name: "y7"),
                NodeSpec("Concat", ["x", "y6"], ["y8"], name: "y8", [("axis", .int(3))]),
            ],
            inputs: [ValueSpec("x", ElemType.float, [2, 16, 40, 40]), ValueSpec("v", ElemType.float, [16, 1, 1])],
            outputs: ["y1", "y2", "y3", "y4", "y5", "y6", "y7"].map { ValueSpec($0, ElemType.float, [2, 16, 40, 40]) }
                + [ValueSpec("y8", ElemType.float, [2, 16, 40, 80])],
            initializers: [
                .float("b", [16, 1, 1], (0..<16).map { Float($0) / 8 - 1 }), .float("half", [], [0.5]),
                .float("one", [], [1]), .float("two", [], [2]),
            ]))

    @Test("fuse-elementwise makes chains one loop over their output, and leaves values read twice or smaller")
    func fuseElementwise() async throws {
        var random = SeededGenerator(state: 9)
        let x = (0..<51_200).map { _ in Float.random(in: -4...4, using: &random) }
        let v = (0..<16).map { _ in Float.random(in: -1...1, using: &random) }
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.elementwiseModel, target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied == ["fuse-elementwise: 4"])
        #expect(
            result.manifest.opCountsAfter == [
                "kiln::FusedElementwise": 2, "Exp": 1, "Add": 2, "Mul": 1, "Neg": 1, "Tanh": 1, "Abs": 1, "Concat": 1,
            ])
        let path = try #require(result.artifactPath)
        let outputs = try OpenedArtifact(path: path).loaded.run([bytes(x), bytes(v)]).map(floats)
        let channel = (0..<51_200).map { $0 / 1600 % 16 }
        let a = zip(x, channel).map { $0 + (Float($1) / 8 - 1) }
        // Rows of 40 from x, then the same rows of Tanh(x): the Concat's rows, shared over the threads.
        var concatenated: [Float] = []
        for row in 0..<1280 {
            let slab = x[row * 40..<(row + 1) * 40]
            concatenated += Array(slab)
            concatenated += slab.map { tanh($0) }
        }
        let expected: [[Float]] = [
            x.map { $0 / (1 + exp(-$0)) },
            zip(a, x).map { ($0 >= 0 ? $0 : 0.1 * $0) * 0.5 - $1 },
            x.map { exp($0) + 1 }, x.map { exp($0) * 2 }, zip(x, channel).map { $0 - v[$1] }, x.map { tanh($0) },
            x.map { abs(tanh($0)) },
            concatenated,
        ]
        for (index, want) in expected.enumerated() { expectClose(outputs[index], want, "y\(index + 1)") }
        try expectSameBytesOnThreads(path, [bytes(x), bytes(v)])
    }
}
