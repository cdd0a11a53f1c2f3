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

    @Option(
        help: ArgumentHelp(
            "Keep the untimed runs going for at least this many seconds.",
            discussion: "A fresh process's threads take a while to settle on their own CPUs."))
    var warmupSeconds: Double = 0

    @Option(help: "Timed runs.")
    var iterations: Int = 50

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Time each step (graph node) instead: mean time per operator type and the slowest steps.")
    var profile = false

    @Option(help: "With --profile: how many of the slowest steps to list.")
    var top = 15

    struct Result: Encodable {
        var variant: String
        var emulated: String?
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
        guard warmupSeconds >= 0, warmupSeconds <= 3600 else {
            throw fail("ClientError: InputConfiguration: --warmup-seconds must be from 0 to 3600")
        }
        do {
            let opened = try OpenedArtifact(path: artifact, threads: threads)
            let model = opened.loaded
            var generator = SystemRandomNumberGenerator()
            let inputs = model.manifest.inputs.map { tensor -> Data in
                let count = LoadedArtifact.bytes(tensor)
                guard tensor.dtype == "float32" else { return Data(count: count) }
                var floats = (0..<count / 4).map { _ in Float.random(in: -1...1, using: &generator) }
                return Data(bytes: &floats, count: count)
            }
            if let emulation = model.emulation {
                FileHandle.standardError.write(Data("kiln bench: running under \(emulation)\n".utf8))
            }
            if profile {
                try printProfile(
                    try model.profile(inputs, warmup: warmup, warmupSeconds: warmupSeconds, iterations: iterations),
                    model: model)
                return
            }
            var times = try model.time(inputs, warmup: warmup, warmupSeconds: warmupSeconds, iterations: iterations)
            times.sort()
            let result = Result(
                variant: model.variant, emulated: model.emulation, threads: threads, iterations: iterations,
                medianMilliseconds: times[times.count / 2],
                p90Milliseconds: times[min(times.count - 1, times.count * 9 / 10)], minMilliseconds: times[0])
            if json {
                print(try jsonText(result))
            } else {
                print(
                    String(
                        format: "median %.3f ms  p90 %.3f ms  min %.3f ms  (%d runs, %d thread(s), %@ code)",
                        result.medianMilliseconds, result.p90Milliseconds, result.minMilliseconds, iterations, threads,
                        model.variant) + (model.emulation.map { "  [under \($0)]" } ?? ""))
            }
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
    }

    struct OperatorTotal: Encodable {
        var opType: String
        var steps: Int
        var milliseconds: Double
        var percent: Double
    }

    struct Profile: Encodable {
        var variant: String
        var threads: Int
        var iterations: Int
        var totalMilliseconds: Double
        var operators: [OperatorTotal]
        var steps: [ProfileStep]
    }

    func printProfile(_ steps: [ProfileStep], model: any ArtifactExecutor) throws {
        let total = steps.reduce(0) { $0 + $1.milliseconds }
        let operators = Dictionary(grouping: steps, by: \.opType).map { opType, group in
            let milliseconds = group.reduce(0) { $0 + $1.milliseconds }
            return OperatorTotal(
                opType: opType, steps: group.count, milliseconds: milliseconds,
                percent: total > 0 ? 100 * milliseconds / total : 0)
        }.sorted { $0.milliseconds > $1.milliseconds }
        if json {
            print(
                try jsonText(
                    Profile(
                        variant: model.variant, threads: threads, iterations: iterations, totalMilliseconds: total,
                        operators: operators, steps: steps)))
            return
        }
        print(
            String(
                format: "%.3f ms per run over %d steps (mean of %d runs, %d thread(s), %@ code)", total, steps.count,
                iterations, threads, model.variant))
        print("\nby operator:")
        for entry in operators {
            print(
                String(
                    format: "  %9.3f ms  %5.1f%%  %4d × %@", entry.milliseconds, entry.percent, entry.steps,
                    entry.opType))
        }
        print("\nslowest steps:")
        let ranked = steps.enumerated().sorted { $0.element.milliseconds > $1.element.milliseconds }
        for (index, step) in ranked.prefix(max(top, 0)) {
            print(
                String(
                    format: "  %9.3f ms  %5.1f%%  #%-4d %@", step.milliseconds,
                    total > 0 ? 100 * step.milliseconds / total : 0, index, step.label))
        }
    }
}
