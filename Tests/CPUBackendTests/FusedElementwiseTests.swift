import Foundation
import Passes
import Runtime
import TestSupport
import Testing

/// fuse-elementwise against the unfused nodes: every op the pass takes, once fed by an Add whose output is
/// also a graph output (so nothing fuses) and once by an identical Add that fuses into it.
@Suite("fuse-elementwise against the unfused ops")
struct FusedElementwiseTests {
    /// The pass's own sets, so an op added to them is tested here too.
    static let unary = ElementwiseFusion.unary.sorted()
    static let binary = ElementwiseFusion.binary.sorted()

    @Test("every op fuse-elementwise takes computes in the fused loop what it computes alone")
    func agrees() async throws {
        var nodes: [NodeSpec] = []
        var outputs: [ValueSpec] = []
        var constants: [TensorSpec] = []
        let shape: [Dim] = [3, 40]
        for (index, op) in (Self.unary + Self.binary).enumerated() {
            let operands = Self.binary.contains(op) ? ["z"] : []
            // Attributes away from their defaults where an op has them, so they must reach the fused loop.
            let attributes: [(String, AttrSpec)] =
                [
                    "LeakyRelu": [("alpha", .float(0.3))], "Elu": [("alpha", .float(0.7))],
                    "Celu": [("alpha", .float(1.5))],
                    "ThresholdedRelu": [("alpha", .float(0.2))],
                    "Shrink": [("lambd", .float(0.3)), ("bias", .float(0.1))],
                    "HardSigmoid": [("alpha", .float(0.3)), ("beta", .float(0.4))],
                ][op] ?? []
            nodes += [
                NodeSpec("Add", ["x", "h\(index)"], ["a\(index)"], name: "a\(index)"),
                NodeSpec(op, ["a\(index)"] + operands, ["u\(index)"], name: "u\(index)", attributes),
                NodeSpec("Add", ["q\(index)", "x"], ["b\(index)"], name: "b\(index)"),
                NodeSpec(op, ["b\(index)"] + operands, ["f\(index)"], name: "f\(index)", attributes),
            ]
            constants += [.float("h\(index)", [], [0.25]), .float("q\(index)", [], [0.25])]
            outputs += [
                ValueSpec("a\(index)", ElemType.float, shape), ValueSpec("u\(index)", ElemType.float, shape),
                ValueSpec("f\(index)", ElemType.float, shape),
            ]
        }
        let model = ModelSpec(
            opset: 20,
            graph: GraphSpec(
                nodes: nodes,
                inputs: [ValueSpec("x", ElemType.float, shape), ValueSpec("z", ElemType.float, shape)],
                outputs: outputs, initializers: constants))
        let directory = try TemporaryDirectory()
        // Every Add has a constant of its own (all 0.25) so that the CSE pass makes none of them one, whose
        // output would then have many readers and fuse with none.
        let result = try await compile(model, target: native(layout: "NCHW"), in: directory)
        let count = Self.unary.count + Self.binary.count
        #expect(result.manifest.opCountsAfter["kiln::FusedElementwise"] == count)
        var random = SeededGenerator(state: 4)
        let x = (0..<120).map { _ in Float.random(in: -0.9...0.7, using: &random) }
        let z = (0..<120).map { _ in Float.random(in: 0.5...2, using: &random) }
        let got = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x), bytes(z)]).map(
            floats)
        for (index, op) in (Self.unary + Self.binary).enumerated() {
            let (alone, fused) = (got[3 * index + 1], got[3 * index + 2])
            let same = zip(alone, fused).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
            #expect(same, "\(op): alone \(alone.prefix(4)), fused \(fused.prefix(4))")
        }
    }
}
