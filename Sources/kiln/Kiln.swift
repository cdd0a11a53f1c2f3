import ArgumentParser
import Frontends
import Pipeline

/// The `kiln` command: each subcommand is a thin struct over a library call.
@main
struct Kiln: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kiln",
        abstract: "A model compiler with the SageMaker compilation-job API.",
        version:
            "kiln \(KilnVersion.current) (ONNX library opset \(ONNXFrontend.libraryOpset), IR \(ONNXFrontend.libraryIRVersion))",
        subcommands: [
            Inspect.self, Compile.self, Run.self, Bench.self, Ops.self, CreateCompilationJob.self,
            DescribeCompilationJob.self, ListCompilationJobs.self, StopCompilationJob.self,
            DeleteCompilationJob.self, BatchCommand.self, Worker.self, Serve.self, ConfigCommand.self,
            TargetsCommand.self,
            Conformance.self,
        ]
    )
}
