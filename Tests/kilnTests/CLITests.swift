import Foundation
import TestSupport
import Testing

/// Runs the built `kiln` executable (beside the test bundle) with `arguments`.
func kiln(_ arguments: [String], home: String) throws -> (status: Int32, stdout: String, stderr: String) {
    try kiln(arguments, home: home, environment: [:])
}

@Suite("the kiln command line")
struct CLITests {
    @Test("prints its version")
    func version() throws {
        let directory = try TemporaryDirectory()
        let result = try kiln(["--version"], home: directory.path)
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("kiln 0."))
    }

    @Test("inspects a sample model and prints shapes, ops and stage times")
    func inspect() throws {
        let directory = try TemporaryDirectory()
        let result = try kiln(
            [
                "inspect", repositoryRoot + "/models/digits-cnn/model.tar.gz", "--data-input-config",
                "{'image': [2,1,8,8]}",
            ],
            home: directory.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("output     probabilities  float32 [2,10]"))
        #expect(result.stdout.contains("Conv 1"))
        #expect(result.stdout.contains("stages     fetch "))
    }

    @Test("prints JSON with --json")
    func json() throws {
        let directory = try TemporaryDirectory()
        let result = try kiln(
            ["inspect", repositoryRoot + "/models/digits-mlp/model.tar.gz", "--json"], home: directory.path)
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["opset"] as? Int == 17)
        #expect(object?["originalOpset"] as? Int == 11)
        #expect((object?["stages"] as? [[String: Any]])?.count == 4)
    }

    @Test(
        "ends bad input with a non-zero exit and the reason as the last stderr line",
        arguments: [
            (
                ["inspect", "/nonexistent/m.tar.gz"],
                "ClientError: InputConfiguration: /nonexistent/m.tar.gz does not exist"
            ),
            (["inspect", "MODEL", "--data-input-config", "{oops"], "ClientError: DataInputConfig: "),
            (
                ["inspect", "MODEL", "--framework", "CAFFE"],
                "ClientError: InputConfiguration: unknown Framework 'CAFFE'"
            ),
            (
                ["inspect", "MODEL", "--framework", "PYTORCH"],
                "ClientError: InputConfiguration: Framework PYTORCH is not supported"
            ),
        ])
    func failures(arguments: [String], reason: String) throws {
        let directory = try TemporaryDirectory()
        let model = repositoryRoot + "/models/digits-cnn/model.tar.gz"
        let result = try kiln(arguments.map { $0 == "MODEL" ? model : $0 }, home: directory.path)
        #expect(result.status == 1)
        let last = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix(reason), "\(result.stderr)")
    }
}
