import ArgumentParser
import CPUBackend
import ModelIR

/// `kiln ops`: the operator table as Markdown, generated from the backend's table.
struct Ops: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ONNX operators Kiln compiles, as a Markdown table.")

    func run() {
        print("| operator (domain::op outside ai.onnx) | element types | Kiln shape rule (needed for opset > 17) |")
        print("| --- | --- | --- |")
        for op in OperatorTable.supportedOps {
            let types = OperatorTable.types(of: op).map {
                $0.count > 8
                    ? ($0.contains("bool") ? "all numeric types and bool" : "all numeric types")
                    : $0.joined(separator: ", ")
            }
            let how = OperatorTable.rewrittenOps[op] ?? "folded at compile time"
            let rule = ShapeRules.table[op] != nil || OperatorTable.rewrittenOps[op] != nil
            print("| \(op) | \(types ?? how) | \(rule ? "yes" : "no") |")
        }
    }
}
