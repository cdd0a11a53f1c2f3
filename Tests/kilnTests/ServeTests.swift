import Foundation
import TestSupport
import Testing

/// A running `kiln serve` on a free loopback port, with two users in a credentials file.
final class RunningServer {
    let sandbox: JobSandbox
    let process: Process
    let port: Int

    init(_ sandbox: JobSandbox, arguments: [String] = [], environment: [String: String] = [:]) throws {
        self.sandbox = sandbox
        let credentials = sandbox.directory.path + "/credentials"
        try """
        [alice]
        aws_access_key_id = AKIAALICE0000000001
        aws_secret_access_key = alice-secret-key
        aws_account_id = 111111111111

        [bob]
        aws_access_key_id = AKIABOB00000000000002
        aws_secret_access_key = bob-secret-key
        aws_account_id = 222222222222
        """.write(toFile: credentials, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: credentials)
        let (process, port) = try startKiln(
            ["serve", "--port", "0", "--credentials", credentials, "--region", "us-west-2", "--log-level", "warning"]
                + arguments,
            environment: ["KILN_HOME": sandbox.home, "KILN_NO_AUTOSTART": "1"].merging(environment) { $1 })
        self.process = process
        self.port = port
    }

    deinit { if process.isRunning { process.terminate() } }
}

@Suite("kiln serve", .serialized)
struct ServeTests {
    @Test("boto3 runs a job to COMPLETED; accounts are isolated; bad credentials and broken HTTP are refused")
    func boto3() throws {
        let sandbox = try JobSandbox()
        let server = try RunningServer(sandbox)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot + "/Tests/kilnTests/Scripts/serve_client.py", String(server.port), "us-west-2",
            repositoryRoot + "/models/digits-cnn/model.tar.gz",
        ]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(errors)")
        let seen = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any], "\(errors)")
        #expect(seen["arn"] as? String == "arn:aws:sagemaker:us-west-2:111111111111:compilation-job/boto-digits")
        #expect(seen["status"] as? String == "COMPLETED")
        #expect(seen["artifact"] as? String == "s3://bucket/boto/model-ml_c4.tar.gz")
        #expect((seen["digest"] as? String)?.hasPrefix("sha256:") == true)
        #expect(seen["alice_jobs"] as? [String] == ["boto-digits"])
        #expect(seen["bob_jobs"] as? [String] == [])
        #expect(seen["bob_describe"] as? String == "ResourceNotFound")
        #expect(seen["bob_delete"] as? String == "ResourceNotFound")
        #expect(seen["wrong_secret"] as? String == "InvalidSignatureException")
        #expect(seen["unknown_key"] as? String == "UnrecognizedClientException")
        #expect(seen["validation"] as? String == "ValidationException")
        #expect(seen["in_use"] as? String == "ResourceInUse")
        #expect(seen["unsigned"] as? String == "HTTP/1.1 403 Forbidden")
        #expect((seen["garbage"] as? String)?.contains("500") != true)
        #expect(seen["huge_body"] as? String == "HTTP/1.1 413 Payload Too Large")
        #expect(seen["ping"] as? String == "HTTP/1.1 200 OK")
        #expect(seen["after_delete"] as? String == "ResourceNotFound")
        #expect(server.process.isRunning)
    }

    @Test("refuses to serve a non-loopback address without credentials")
    func loopbackOnly() throws {
        let sandbox = try JobSandbox()
        let result = try sandbox.run(["serve", "--host", "0.0.0.0", "--port", "0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("without --credentials"))
    }

    @Test("SIGTERM drains: a job still building after the grace period goes back to the queue, not INPROGRESS")
    func drain() async throws {
        let sandbox = try JobSandbox()
        let server = try RunningServer(
            sandbox, arguments: ["--grace-seconds", "1"], environment: ["CC": sandbox.slowCC])
        #expect(try sandbox.create("draining") == 0)
        // Created by the CLI in the CLI's account: the server's runner takes it all the same.
        _ = try await sandbox.waitFor("draining", seconds: 30) { jobStatus($0) == "INPROGRESS" }
        kill(server.process.processIdentifier, SIGTERM)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
        let after = try sandbox.status("draining")
        #expect(jobStatus(after) == "STARTING")
        #expect(processes(containing: sandbox.slowCC).isEmpty)
    }
}
