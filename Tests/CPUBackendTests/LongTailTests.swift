import Diagnostics
import Foundation
import Pipeline
import Runtime
import TestSupport
import Testing

/// Control flow and data-dependent shapes: what compiles, and the reasons for what does not.
/// (Every operator family is also checked against ONNX Runtime by scripts/longtail.)
@Suite("control flow, data-dependent ops and the long tail")
struct LongTailTests {
    /// y = c ? x + 1 : x * 2, with the branches reading x from the enclosing graph.
    static func ifModel(elseDoubles: Bool = true) -> ModelSpec {
        let thenBranch = GraphSpec(
            name: "then", nodes: [NodeSpec("Add", ["x", "one"], ["t"])],
            outputs: [ValueSpec("t", ElemType.float, [3])])
        let elseBranch =
            elseDoubles
            ? GraphSpec(
                name: "else", nodes: [NodeSpec("Mul", ["x", "two"], ["e"])],
                outputs: [ValueSpec("e", ElemType.float, [3])])
            : GraphSpec(
                name: "else", nodes: [NodeSpec("Concat", ["x", "x"], ["e"], [("axis", .int(0))])],
                outputs: [ValueSpec("e", ElemType.float, [6])])
        return ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec(
                        "If", ["c"], ["y"], [("then_branch", .graph(thenBranch)), ("else_branch", .graph(elseBranch))])
                ],
                inputs: [ValueSpec("c", ElemType.bool, []), ValueSpec("x", ElemType.float, [3])],
                outputs: [ValueSpec("y", ElemType.float, elseDoubles ? [3] : ["m"])],
                initializers: [.float("one", [], [1]), .float("two", [], [2])]))
    }

    /// How compiling `model` failed; nil (and a recorded issue) when it compiled.
    static func refusal(_ model: ModelSpec, config: String? = nil, in directory: TemporaryDirectory) async throws
        -> PipelineFailure?
    {
        do {
            _ = try await compile(model, config: config, in: directory)
        } catch let failure as PipelineFailure {
            return failure
        }
        Issue.record("the model compiled; it should have been refused")
        return nil
    }

    @Test("an If runs the branch its run-time condition picks (both compiled, one executed)")
    func ifRunsTakenBranch() async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.ifModel(), in: directory)
        let artifact = try OpenedArtifact(path: try #require(result.artifactPath))
        let x = bytes([1, -2, 3])
        #expect(floats(try artifact.loaded.run([Data([1]), x])[0]) == [2, -1, 4])
        #expect(floats(try artifact.loaded.run([Data([0]), x])[0]) == [2, -4, 6])
    }

    @Test("an If whose branches give different shapes is refused, naming both")
    func ifShapesDiffer() async throws {
        let directory = try TemporaryDirectory()
        let reason = try #require(await Self.refusal(Self.ifModel(elseDoubles: false), in: directory)).failureReason
        #expect(reason.contains("branches give float32[3] and float32[6]"))
    }

    @Test("a Loop whose trip count is computed at run time is refused with what to do")
    func loopRuntimeTripCount() async throws {
        let body = GraphSpec(
            name: "body",
            nodes: [NodeSpec("Identity", ["cond_in"], ["cond_out"]), NodeSpec("Neg", ["v_in"], ["v_out"])],
            inputs: [
                ValueSpec("i", ElemType.int64, []), ValueSpec("cond_in", ElemType.bool, []),
                ValueSpec("v_in", ElemType.float, [2]),
            ],
            outputs: [ValueSpec("cond_out", ElemType.bool, []), ValueSpec("v_out", ElemType.float, [2])])
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("Loop", ["m", "", "v"], ["out"], [("body", .graph(body))])],
                inputs: [ValueSpec("m", ElemType.int64, []), ValueSpec("v", ElemType.float, [2])],
                outputs: [ValueSpec("out", ElemType.float, [2])]))
        let directory = try TemporaryDirectory()
        let reason = try #require(await Self.refusal(model, in: directory)).failureReason
        #expect(reason.contains("trip count (input M) is computed at run time") && reason.contains("DataInputConfig"))
        // Fixing M with DataInputConfig unrolls it: v negated three times.
        let fixed = try await compile(model, config: #"{"m": {"value": 3}, "v": [2]}"#, in: directory)
        let artifact = try OpenedArtifact(path: try #require(fixed.artifactPath))
        #expect(floats(try artifact.loaded.run([bytes([1, -2])])[0]) == [-1, 2])
    }

    @Test("NonZero of a run-time input is refused, saying its output shape depends on the data")
    func nonZeroRuntime() async throws {
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("NonZero", ["x"], ["y"])], inputs: [ValueSpec("x", ElemType.float, [4])],
                outputs: [ValueSpec("y", ElemType.int64, [1, "n"])]))
        let directory = try TemporaryDirectory()
        let failure = try #require(await Self.refusal(model, in: directory))
        #expect(failure.error.category == .modelCheck)
        #expect(failure.failureReason.contains("output shape of NonZero depends on the values of its input"))
    }

    @Test("ZipMap is refused with how to export without it")
    func zipMap() async throws {
        var model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("ZipMap", ["p"], ["z"], domain: "ai.onnx.ml", [("classlabels_int64s", .ints([0, 1]))])
                ],
                inputs: [ValueSpec("p", ElemType.float, [1, 2])], outputs: []))
        model.opsets.append(("ai.onnx.ml", 1))
        model.graph.nodes.append(NodeSpec("Identity", ["p"], ["y"]))
        model.graph.outputs = [ValueSpec("y", ElemType.float, [1, 2])]
        let directory = try TemporaryDirectory()
        let reason = try #require(await Self.refusal(model, in: directory)).failureReason
        #expect(reason.contains("ZipMap produces a sequence of maps") && reason.contains("'zipmap': False"))
    }

    @Test("DynamicQuantizeLSTM is named with what to do instead")
    func dynamicQuantizeLSTM() async throws {
        var model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("DynamicQuantizeLSTM", ["x"], ["y"], domain: "com.microsoft")],
                inputs: [ValueSpec("x", ElemType.float, [1, 1, 2])], outputs: [ValueSpec("y", ElemType.float, [1])]))
        model.opsets.append(("com.microsoft", 1))
        let directory = try TemporaryDirectory()
        let reason = try #require(await Self.refusal(model, in: directory)).failureReason
        #expect(
            reason.contains("com.microsoft::DynamicQuantizeLSTM is an LSTM with int8 weights")
                && reason.contains("op_types_to_quantize"))
    }

    @Test("rank-0 inputs take a [] shape in DataInputConfig; a rank-1 shape for them is refused")
    func scalars() async throws {
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("Mul", ["x", "s"], ["y"])],
                inputs: [ValueSpec("x", ElemType.float, ["n"]), ValueSpec("s", ElemType.float, [])],
                outputs: [ValueSpec("y", ElemType.float, ["n"])]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, config: #"{"x": [2], "s": []}"#, in: directory)
        let artifact = try OpenedArtifact(path: try #require(result.artifactPath))
        #expect(floats(try artifact.loaded.run([bytes([1, 2]), bytes([3])])[0]) == [3, 6])
        let reason = try #require(await Self.refusal(model, config: #"{"x": [2], "s": [1]}"#, in: directory))
            .failureReason
        #expect(reason.contains("has rank 0 [] in the model"))
    }
}
