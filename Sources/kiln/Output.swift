import ArgumentParser
import Diagnostics
import Foundation
import Frontends
import Pipeline

typealias KilnError = Diagnostics.KilnError

/// Ends a command that failed: the failure reason as the last line on stderr, exit 1.
func fail(_ reason: String) -> ExitCode {
    FileHandle.standardError.write(Data((reason + "\n").utf8))
    return ExitCode.failure
}

func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// The text layout of `kiln inspect`.
enum InspectionText {
    static func render(_ summary: InspectionSummary) -> String {
        var lines: [String] = []
        func row(_ label: String, _ text: String) {
            lines.append(label.padding(toLength: 11, withPad: " ", startingAt: 0) + text)
        }
        var model = summary.modelFile ?? "?"
        model += " (IR \(summary.irVersion ?? 0), opset \(summary.opset ?? 0)"
        if let original = summary.originalOpset, original != summary.opset { model += ", was opset \(original)" }
        if let producer = summary.producer, !producer.isEmpty { model += ", from \(producer)" }
        row("model", model + ")")
        for note in summary.notes { row("note", note) }
        for input in summary.inputs {
            row("input", "\(input.name)  \(input.dtype) [\(input.shape.map(String.init).joined(separator: ","))]")
        }
        for output in summary.outputs {
            row("output", "\(output.name)  \(output.dtype) [\(output.shape.map(String.init).joined(separator: ","))]")
        }
        row("parameters", "\(grouped(summary.parameterCount ?? 0)) (\(bytesText(summary.parameterBytes ?? 0)))")
        let ops = summary.ops.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        row(
            "ops",
            "\(summary.ops.values.reduce(0, +)) nodes: " + ops.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        let total = summary.stages.reduce(0) { $0 + $1.seconds }
        row(
            "stages",
            summary.stages.map { "\($0.stage) \(seconds($0.seconds))" }.joined(separator: "  ")
                + "  (total \(seconds(total)))")
        return lines.joined(separator: "\n")
    }

    static func seconds(_ value: Double) -> String { String(format: "%.3fs", value) }

    static func grouped(_ value: Int) -> String {
        let digits = Array(String(value))
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }

    static func bytesText(_ bytes: Int) -> String {
        bytes >= 1_000_000
            ? String(format: "%.1f MB", Double(bytes) / 1e6) : String(format: "%.1f kB", Double(bytes) / 1e3)
    }
}

/// The framework and the process's pipeline environment, or the failure reason as an exit.
func frameworkAndEnvironment(_ framework: String) throws -> (Framework, PipelineEnvironment) {
    do {
        return (try Framework(parsing: framework), try PipelineEnvironment.fromProcess())
    } catch let error as KilnError {
        throw fail(error.failureReason)
    }
}
