import Foundation
import Runtime
import TestSupport
import Testing

@Suite("Softmax and the vector exp, erf and GELU")
struct SoftmaxTests {
    /// exp's awkward inputs after the row maximum (0) is subtracted: masked positions, results that are
    /// subnormal or zero in float, both sides of the -87 clamp, and ordinary values.
    static let awkward: [Float] = [
        -10000, -103.5, -103, -101, -95, -90, -87.5, -87.01, -87, -86.9, -60, -20, -5, -1, -0.25, -1e-4, 0,
    ]

    /// Rows of 37 (whole vectors and a tail, at either width), each a rotation of `awkward` led by 0.
    static func rows(_ count: Int, length: Int) -> [Float] {
        (0..<count).flatMap { row in
            (0..<length).map { column in column == 0 ? 0 : awkward[(row + column) % awkward.count] }
        }
    }

    @Test("softmax rows with masked and subnormal-range values match exp in double", arguments: ["native", "haswell"])
    func softmax(mcpu: String) async throws {
        let (count, length) = (6, 37)
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("Softmax", ["x"], ["y"], name: "s", [("axis", .int(-1))])],
                inputs: [ValueSpec("x", ElemType.float, [.value(count), .value(length)])],
                outputs: [ValueSpec("y", ElemType.float, [.value(count), .value(length)])]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: "NHWC", mcpu: mcpu), in: directory)
        var x = Self.rows(count, length: length)
        x[length * 5 + 3] = .nan
        let got = try floats(OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])[0])
        for row in 0..<count {
            let values = x[row * length..<(row + 1) * length].map { exp(Double($0)) }
            let sum = values.reduce(0, +)
            for (column, value) in values.enumerated() {
                let (index, want) = (row * length + column, value / sum)
                if row == 5 {
                    #expect(got[index].isNaN, "a NaN makes its whole row NaN: [\(row)][\(column)] = \(got[index])")
                } else {
                    #expect(
                        abs(Double(got[index]) - want) <= 1e-6 * want + 2e-45,
                        "[\(row)][\(column)] of exp(\(x[index])): \(got[index]), not \(want)")
                }
            }
        }
    }

    @Test(
        "GELU in a product's stores: the vector erf across its branches and exp's clamp",
        arguments: ["native", "haswell"])
    func gelu(mcpu: String) async throws {
        // y = GELU(x I): the identity keeps x, so the epilogue's GELU sees exactly these values.
        let width = 32
        let special: [Float] = [
            -15, -14.2, -13.5, -13, -9, -3, -0.7, -0.5, -0.49, -1e-3, 0, 1e-3, 0.49, 0.5, 2, 13.5, 15,
        ]
        var random = SeededGenerator(state: 11)
        let x = (0..<4 * width).map { $0 < special.count ? special[$0] : Float.random(in: -15...15, using: &random) }
        let identity = (0..<width * width).map { $0 / width == $0 % width ? Float(1) : 0 }
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("MatMul", ["x", "w"], ["h"], name: "m"),
                    NodeSpec("Mul", ["h", "half"], ["hh"], name: "hh"),
                    NodeSpec("Div", ["h", "sqrt2"], ["hd"], name: "hd"), NodeSpec("Erf", ["hd"], ["he"], name: "he"),
                    NodeSpec("Add", ["he", "one"], ["hp"], name: "hp"),
                    NodeSpec("Mul", ["hh", "hp"], ["y"], name: "y"),
                ],
                inputs: [ValueSpec("x", ElemType.float, [4, .value(width)])],
                outputs: [ValueSpec("y", ElemType.float, [4, .value(width)])],
                initializers: [
                    .float("w", [width, width], identity), .float("half", [], [0.5]), .float("one", [], [1]),
                    .float("sqrt2", [], [Float(2.0.squareRoot())]),
                ]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: "NHWC", mcpu: mcpu), in: directory)
        #expect(result.manifest.opCountsAfter["kiln::FusedMatMul"] == 1, "GELU is in the product's stores")
        let got = try floats(OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])[0])
        let want = x.map { Float(MatMulEpilogueTests.gelu(Double($0))) }
        expectClose(got, want, "GELU")
        for (index, value) in x.enumerated() where value < -13 {
            #expect(got[index] <= 0 && got[index] > -1e-30, "GELU(\(value)) = \(got[index])")
        }
    }
}
