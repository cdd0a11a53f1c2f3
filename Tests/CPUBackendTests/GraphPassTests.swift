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
