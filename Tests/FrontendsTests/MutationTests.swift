import Diagnostics
import Foundation
import TestSupport
import Testing

@testable import Frontends

/// Damages a protobuf the way a bad download or a hostile file would.
func mutate(_ bytes: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
    var result = bytes
    for _ in 0..<Int.random(in: 1...4, using: &random) {
        guard !result.isEmpty else { break }
        let position = Int.random(in: 0..<result.count, using: &random)
        switch Int.random(in: 0..<5, using: &random) {
        case 0: result[position] = UInt8.random(in: 0...255, using: &random)
        case 1: result[position] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case 2: result.removeSubrange(position..<min(result.count, position + Int.random(in: 1...16, using: &random)))
        case 3: result.insert(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], at: position)
        default: result = Array(result[..<position])
        }
    }
    return result
}

@Suite("damaged models")
struct MutationTests {
    @Test("every mutation of a real model is checked or refused with a reason, never a crash")
    func mutations() throws {
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "w"], ["c"], name: "conv", [("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Relu", ["c"], ["r"]),
                    NodeSpec("MaxPool", ["r"], ["p"], [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))]),
                    NodeSpec("Flatten", ["p"], ["f"]),
                    NodeSpec("Gemm", ["f", "fc"], ["y"], [("transB", .int(1))]),
                ],
                inputs: [ValueSpec("x", ElemType.float, ["N", 1, 4, 4])],
                outputs: [ValueSpec("y", ElemType.float, ["N", 3])],
                initializers: [
                    .float("w", [2, 1, 3, 3], (0..<18).map(Float.init)),
                    .float("fc", [3, 8], (0..<24).map(Float.init)),
                ])
        ).bytes
        _ = try checkBytes(model, config: "[[1,1,4,4]]")
        var random = SeededGenerator(state: 2026)
        var outcomes: [String: Int] = [:]
        let count = Int(ProcessInfo.processInfo.environment["KILN_MUTATIONS"] ?? "") ?? 400
        for _ in 0..<count {
            let damaged = mutate(model, &random)
            do {
                _ = try checkBytes(damaged, config: "[[1,1,4,4]]")
                outcomes["checked", default: 0] += 1
            } catch let error as KilnError {
                #expect(!error.failureReason.contains("\n"))
                outcomes[error.party.rawValue + ": " + error.category.rawValue, default: 0] += 1
            }
        }
        print("mutation outcomes:", outcomes.sorted { $0.key < $1.key })
        #expect(outcomes.values.reduce(0, +) == count)
    }
}
