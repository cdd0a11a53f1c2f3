import ArgumentParser
import CPUBackend
import ModelIR

/// `kiln ops`: the operator table as Markdown, generated from the backend's table.
struct Ops: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the ONNX operators Kiln compiles, as a Markdown table.")

    func run() {
        print("| operator | element types | Kiln shape rule (needed for opset > 17) |")
        print("| --- | --- | --- |")
        for op in OperatorTable.supportedOps {
            let types = OperatorTable.types(of: op).map {
                $0.count > 8
                    ? ($0.contains("bool") ? "all numeric types and bool" : "all numeric types")
                    : $0.joined(separator: ", ")
            }
            print("| \(op) | \(types ?? "folded at compile time") | \(ShapeRules.table[op] != nil ? "yes" : "no") |")
        }
    }
}
