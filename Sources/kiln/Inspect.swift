import ArgumentParser
import Foundation
import Frontends
import Pipeline

/// `kiln inspect`: runs fetch → check on a model and prints what Kiln sees.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a model (fetch → unpack → parse → check) and show its inputs, outputs, ops and stage times.")

    @Argument(help: "model.tar.gz, a bare .onnx file, file:///path or s3://bucket/key (local object store).")
    var model: String

    @Option(help: "The InputConfig.Framework of the model.")
    var framework: String = "ONNX"

    @Option(
        help:
            #"Input shapes: '{"input": [1,3,224,224]}' or '[[1,3,224,224]]'. Optional when the model's inputs are static."#
    )
    var dataInputConfig: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let (framework, environment) = try frameworkAndEnvironment(self.framework)
        let request = PipelineRequest(modelURI: model, framework: framework, dataInputConfig: dataInputConfig)
        do {
            let inspection = try Pipeline(environment: environment).inspect(request)
            let summary = InspectionSummary(inspection)
            print(json ? try jsonText(summary) : InspectionText.render(summary))
        } catch let failure as PipelineFailure {
            if json { print(try jsonText(InspectionSummary(failure))) }
            throw fail(failure.failureReason)
        }
    }
}
