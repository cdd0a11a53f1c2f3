import ArgumentParser
import Foundation
import Runtime

/// `kiln bench`: times an artifact on seeded random inputs.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time a compiled artifact: median, p90 and min latency.")

    @Argument(help: "The artifact: its .tar.gz or an unpacked directory.")
    var artifact: String

    @Option(help: "Threads the model may use.")
    var threads: Int = 1

    @Option(help: "Untimed runs first.")
    var warmup: Int = 5

    @Option(help: "Timed runs.")
    var iterations: Int = 50

    @Flag(help: "Print JSON instead of text.")
    var json = false

    struct Result: Encodable {
        var variant: String
        var threads: Int
        var iterations: Int
        var medianMilliseconds: Double
        var p90Milliseconds: Double
        var minMilliseconds: Double
    }

    func run() throws {
        guard iterations > 0, warmup >= 0 else {
            throw fail("ClientError: InputConfiguration: --iterations must be positive")
        }
        do {
            let opened = try OpenedArtifact(path: artifact, threads: threads)
            let model = opened.loaded
            var generator = SystemRandomNumberGenerator()
            let inputs = model.manifest.inputs.map { tensor -> UnsafeMutableRawBufferPointer in
                let buffer = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: max(LoadedArtifact.bytes(tensor), 1), alignment: 64)
                if tensor.dtype == "float32" {
                    let floats = buffer.bindMemory(to: Float.self)
                    for index in floats.indices { floats[index] = Float.random(in: -1...1, using: &generator) }
                } else {
                    buffer.initializeMemory(as: UInt8.self, repeating: 0)
                }
                return buffer
            }
            let outputs = model.manifest.outputs.map {
                UnsafeMutableRawBufferPointer.allocate(byteCount: max(LoadedArtifact.bytes($0), 1), alignment: 64)
            }
            defer {
                inputs.forEach { $0.deallocate() }
                outputs.forEach { $0.deallocate() }
            }
            let inputPointers = inputs.map { UnsafeRawPointer($0.baseAddress!) }
            let outputPointers = outputs.map { $0.baseAddress! }
            for _ in 0..<warmup { try model.run(inputs: inputPointers, outputs: outputPointers) }
            var times: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                try model.run(inputs: inputPointers, outputs: outputPointers)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            let result = Result(
                variant: model.variant, threads: threads, iterations: iterations,
                medianMilliseconds: times[times.count / 2],
                p90Milliseconds: times[min(times.count - 1, times.count * 9 / 10)], minMilliseconds: times[0])
            if json {
                print(try jsonText(result))
            } else {
                print(
                    String(
                        format: "median %.3f ms  p90 %.3f ms  min %.3f ms  (%d runs, %d thread(s), %@ code)",
                        result.medianMilliseconds, result.p90Milliseconds, result.minMilliseconds, iterations, threads,
                        model.variant))
            }
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
    }
}
