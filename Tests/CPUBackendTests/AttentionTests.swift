import Foundation
import Runtime
import TestSupport
import Testing

@Suite("fuse-attention")
struct AttentionTests {
    /// Three attentions over q [2,3,Lq,8] (Lq 900: the kernel takes b in two blocks of rows, 882 and 18):
    /// - a: keys k [2,3,12,8] transposed, scores / √8, + mask [2,1,1,12], softmax, · v [2,3,12,5];
    /// - b: √8⁻¹ · (q Kᵀ) with Kᵀ an input [1,3,8,37] (its batch broadcasts), + a mask [Lq,37] that varies by
    ///   row, softmax, · w [37,5] (no batch dims);
    /// - c: a softmax over axis 2, not the keys: not attention, left as it is.
    static func model(lq: Int) -> ModelSpec {
        let (l, d): (Dim, Dim) = (.value(lq), 8)
        return ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Transpose", ["k"], ["kt"], name: "kt", [("perm", .ints([0, 1, 3, 2]))]),
                    NodeSpec("MatMul", ["q", "kt"], ["as"], name: "as"),
                    NodeSpec("Div", ["as", "root8"], ["ad"], name: "ad"),
                    NodeSpec("Add", ["ad", "mask"], ["am"], name: "am"),
                    NodeSpec("Softmax", ["am"], ["ap"], name: "ap", [("axis", .int(-1))]),
                    NodeSpec("MatMul", ["ap", "v"], ["a"], name: "a"),
                    NodeSpec("MatMul", ["q", "bt"], ["bs"], name: "bs"),
                    NodeSpec("Mul", ["inverse8", "bs"], ["bd"], name: "bd"),
                    NodeSpec("Add", ["rowmask", "bd"], ["bm"], name: "bm"),
                    NodeSpec("Softmax", ["bm"], ["bp"], name: "bp", [("axis", .int(3))]),
                    NodeSpec("MatMul", ["bp", "w"], ["b"], name: "b"),
                    NodeSpec("MatMul", ["q", "kt2"], ["cs"], name: "cs"),
                    NodeSpec("Softmax", ["cs"], ["cp"], name: "cp", [("axis", .int(2))]),
                    NodeSpec("MatMul", ["cp", "v"], ["c"], name: "c"),
                ],
                inputs: [
                    ValueSpec("q", ElemType.float, [2, 3, l, d]), ValueSpec("k", ElemType.float, [2, 3, 12, d]),
                    ValueSpec("v", ElemType.float, [2, 3, 12, 5]), ValueSpec("mask", ElemType.float, [2, 1, 1, 12]),
                    ValueSpec("bt", ElemType.float, [1, 3, d, 37]), ValueSpec("rowmask", ElemType.float, [l, 37]),
                    ValueSpec("w", ElemType.float, [37, 5]), ValueSpec("kt2", ElemType.float, [2, 3, d, 12]),
                ],
                outputs: [
                    ValueSpec("a", ElemType.float, [2, 3, l, 5]), ValueSpec("b", ElemType.float, [2, 3, l, 5]),
                    ValueSpec("c", ElemType.float, [2, 3, l, 5]),
                ],
                initializers: [.float("root8", [], [Float(8.0.squareRoot())]), .float("inverse8", [1], [0.35355339])]
            ))
    }

    /// softmax(scale · q kt + mask) v for one batch's matrices, in double; `axis` 3 is over keys, 2 over queries.
    static func attention(
        q: (Int, Int) -> Double, kt: (Int, Int) -> Double, v: (Int, Int) -> Double, mask: (Int, Int) -> Double,
        scale: Double, lq: Int, lk: Int, d: Int, dv: Int, axis: Int = 3
    ) -> [Double] {
        var scores = (0..<lq).map { i in
            (0..<lk).map { j in scale * (0..<d).reduce(0) { $0 + q(i, $1) * kt($1, j) } + mask(i, j) }
        }
        if axis == 3 {
            scores = scores.map { row in
                let top = row.max()!
                let e = row.map { exp($0 - top) }
                return e.map { $0 / e.reduce(0, +) }
            }
        } else {
            for j in 0..<lk {
                let column = (0..<lq).map { scores[$0][j] }
                let e = column.map { exp($0 - column.max()!) }
                for i in 0..<lq { scores[i][j] = e[i] / e.reduce(0, +) }
            }
        }
        return (0..<lq * dv).map { index in
            (0..<lk).reduce(0) { $0 + scores[index / dv][$1] * v($1, index % dv) }
        }
    }

    @Test(
        "masked, scaled attention fuses into one kernel: broadcast batches, row masks, several blocks of rows",
        arguments: [10, 900])
    func fused(lq: Int) async throws {
        var random = SeededGenerator(state: UInt64(lq))
        func values(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
            (0..<count).map { _ in Float.random(in: range, using: &random) }
        }
        let (q, k, v) = (values(6 * lq * 8), values(6 * 12 * 8), values(6 * 12 * 5))
        // Batch 0 sees its first 9 keys, batch 1 all but the 4th; masked scores go to -10000 as BERT's do.
        let mask: [Float] = (0..<24).map { $0 < 12 ? ($0 < 9 ? 0 : -10000) : ($0 == 15 ? -10000 : 0) }
        let (bt, rowmask, w, kt2) = (values(3 * 8 * 37), values(lq * 37, -3...3), values(37 * 5), values(6 * 8 * 12))
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.model(lq: lq), target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied == ["fuse-attention: 2"])
        #expect(result.manifest.opCountsAfter["kiln::Attention"] == 2)
        #expect(result.manifest.opCountsAfter["Softmax"] == 1, "the softmax over queries stays")
        let inputs = [q, k, v, mask, bt, rowmask, w, kt2].map(bytes)
        let path = try #require(result.artifactPath)
        let outputs = try OpenedArtifact(path: path).loaded.run(inputs).map(floats)

        var expected: [[Double]] = [[], [], []]
        for batch in 0..<6 {
            let (n, head) = (batch / 3, batch % 3)
            func qv(_ i: Int, _ p: Int) -> Double { Double(q[(batch * lq + i) * 8 + p]) }
            expected[0] += Self.attention(
                q: qv, kt: { p, j in Double(k[(batch * 12 + j) * 8 + p]) },
                v: { j, o in Double(v[(batch * 12 + j) * 5 + o]) },
                mask: { _, j in Double(mask[n * 12 + j]) }, scale: 1 / 8.0.squareRoot(), lq: lq, lk: 12, d: 8, dv: 5)
            expected[1] += Self.attention(
                q: qv, kt: { p, j in Double(bt[(head * 8 + p) * 37 + j]) }, v: { j, o in Double(w[j * 5 + o]) },
                mask: { i, j in Double(rowmask[i * 37 + j]) }, scale: Double(Float(0.35355339)), lq: lq, lk: 37, d: 8,
                dv: 5)
            expected[2] += Self.attention(
                q: qv, kt: { p, j in Double(kt2[(batch * 8 + p) * 12 + j]) },
                v: { j, o in Double(v[(batch * 12 + j) * 5 + o]) }, mask: { _, _ in 0 }, scale: 1, lq: lq, lk: 12, d: 8,
                dv: 5, axis: 2)
        }
        for (index, name) in ["a", "b", "c"].enumerated() {
            expectClose(outputs[index], expected[index].map { Float($0) }, name)
        }
        try expectSameBytesOnThreads(path, inputs)
    }

    @Test("attention over no keys fuses and gives zeros: each output is an empty sum")
    func noKeys() async throws {
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("MatMul", ["q", "kt"], ["s"], name: "s"),
                    NodeSpec("Softmax", ["s"], ["p"], name: "p", [("axis", .int(-1))]),
                    NodeSpec("MatMul", ["p", "v"], ["o"], name: "o"),
                ],
                inputs: [
                    ValueSpec("q", ElemType.float, [1, 2, 3, 4]), ValueSpec("kt", ElemType.float, [1, 2, 4, 0]),
                    ValueSpec("v", ElemType.float, [1, 2, 0, 5]),
                ],
                outputs: [ValueSpec("o", ElemType.float, [1, 2, 3, 5])]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied == ["fuse-attention: 1"])
        let q = (0..<24).map { Float($0) }
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(q), Data(), Data()])
        #expect(floats(outputs[0]) == [Float](repeating: 0, count: 30))
    }
}
