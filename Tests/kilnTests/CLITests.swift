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

    @Test("a kernel file clang fails on fails the build in one line and leaves no partial kernel library cached")
    func failedKernelCompile() throws {
        let directory = try TemporaryDirectory()
        // clang as usual, except on pool.c: the kernel files compile side by side, so the others run or finish.
        let cc = directory.path + "/failing-cc"
        try """
        #!/bin/sh
        for argument in "$@"; do
          case "$argument" in */pool.c) echo "pool.c:1:1: error: injected failure" >&2; exit 1;; esac
        done
        exec /opt/swift/usr/bin/clang "$@"

        """.write(toFile: cc, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: cc)
        let result = try kiln(
            [
                "compile", "--model", repositoryRoot + "/models/digits-cnn/model.tar.gz", "--data-input-config",
                #"{"image": [1,1,8,8]}"#, "--target-device", "ml_c5", "--output", directory.path + "/out",
            ],
            home: directory.path + "/home", environment: ["CC": cc, "KILN_NO_AUTOSTART": "1"])
        #expect(result.status == 1)
        let last = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(
            last.contains("ServerError: Build: clang failed compiling the kernel library (pool.c): pool.c:1:1: error"),
            "\(result.stderr)")
        let cache = directory.path + "/home/cache"
        let left = (try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []
        #expect(!left.contains { $0.hasPrefix("kernels-") || $0.hasPrefix(".staging-") }, "\(left)")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/out"))
    }

    @Test("bench warms up for at least --warmup-seconds, and refuses a negative one in one line")
    func benchWarmupSeconds() throws {
        let directory = try TemporaryDirectory()
        let home = directory.path + "/home"
        let compiled = try kiln(
            [
                "compile", "--model", repositoryRoot + "/models/digits-cnn/model.tar.gz", "--data-input-config",
                #"{"image": [1,1,8,8]}"#, "--target-platform", "LINUX/X86_64", "--output", directory.path + "/out",
                "--json",
            ],
            home: home, environment: ["KILN_NO_AUTOSTART": "1"])
        #expect(compiled.status == 0, "\(compiled.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(compiled.stdout.utf8)) as? [String: Any]
        let artifact = try #require(summary?["artifactPath"] as? String)
        let start = Date()
        let bench = try kiln(
            ["bench", artifact, "--warmup", "0", "--warmup-seconds", "0.5", "--iterations", "2", "--json"], home: home)
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(Date().timeIntervalSince(start) >= 0.5)
        let negative = try kiln(["bench", artifact, "--warmup-seconds=-1"], home: home)
        #expect(negative.status == 1)
        #expect(
            negative.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                == "ClientError: InputConfiguration: --warmup-seconds must be from 0 to 3600")
    }
}
