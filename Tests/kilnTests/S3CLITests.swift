import Foundation
import TestSupport
import Testing

/// Runs a boto3 snippet against the moto server with the test keys; returns its stdout.
private func boto3(_ code: String, _ arguments: [String] = []) throws -> String {
    let service = try #require(TestServices.s3)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
        [
            "python3", "-c",
            """
            import sys, boto3
            s3 = boto3.client("s3", endpoint_url="\(service.endpoint)", region_name="us-east-1",
                              aws_access_key_id="\(service.accessKey)", aws_secret_access_key="\(service.secretKey)")
            """ + "\n" + code,
        ] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "boto3 snippet failed: \(code)")
    return text
}

/// The environment that points Kiln at the moto server.
private func s3Environment() throws -> [String: String] {
    let service = try #require(TestServices.s3)
    return [
        "KILN_OBJECT_STORE": "", "AWS_ENDPOINT_URL": service.endpoint, "AWS_ACCESS_KEY_ID": service.accessKey,
        "AWS_SECRET_ACCESS_KEY": service.secretKey, "AWS_REGION": "us-east-1",
    ]
}

@Suite(
    "kiln with S3 and PostgreSQL", .serialized,
    .enabled(
        if: (TestServices.s3 != nil && TestServices.postgres != nil) || TestServices.required,
        "needs moto_server and PostgreSQL (scripts/test starts them)"))
struct FarmCLITests {
    @Test("kiln config names the object store and job store in use, without printing secrets")
    func config() throws {
        let sandbox = try JobSandbox(postgres: true)
        // Names and values, with the alignment padding squeezed out.
        func lines(_ text: String) -> [String] {
            text.split(separator: "\n").map {
                $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            }
        }
        let local = try sandbox.run(["config"])
        #expect(local.status == 0)
        #expect(lines(local.stdout).contains { $0.hasPrefix("object store local directory \(sandbox.home)/objects") })
        #expect(lines(local.stdout).contains { $0.hasPrefix("job store PostgreSQL postgres://kiln@127.0.0.1:") })
        let remote = try sandbox.run(["config"], try s3Environment())
        let service = try #require(TestServices.s3)
        #expect(lines(remote.stdout).contains("object store S3 at \(service.endpoint)"), "\(remote.stdout)")
        #expect(lines(remote.stdout).contains("s3 credentials \(service.accessKey.prefix(4))… from environment"))
        #expect(!remote.stdout.contains(service.secretKey))
    }

    @Test("kiln compile reads the model from S3 and writes the artifact to S3, whole")
    func compileThroughS3() throws {
        let sandbox = try JobSandbox()
        let bucket = "kiln-cli-" + UUID().uuidString.lowercased().prefix(8)
        _ = try boto3(
            "s3.create_bucket(Bucket=sys.argv[1]); s3.upload_file(sys.argv[2], sys.argv[1], 'models/digits.tar.gz')",
            [bucket, repositoryRoot + "/models/digits-cnn/model.tar.gz"])
        let result = try sandbox.run(
            [
                "compile", "--model", "s3://\(bucket)/models/digits.tar.gz", "--framework", "ONNX",
                "--data-input-config", #"{"image": [1,1,8,8]}"#, "--target-device", "ml_c5", "--output",
                "s3://\(bucket)/artifacts/", "--json",
            ], try s3Environment())
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(summary?["artifact"] as? String == "s3://\(bucket)/artifacts/digits-ml_c5.tar.gz")
        let digest = try #require(summary?["digest"] as? String)
        let stored = try boto3(
            """
            import hashlib
            body = s3.get_object(Bucket=sys.argv[1], Key="artifacts/digits-ml_c5.tar.gz")["Body"].read()
            print("sha256:" + hashlib.sha256(body).hexdigest())
            """, [bucket])
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == digest)
        // Nothing was written to the local object store.
        #expect(!FileManager.default.fileExists(atPath: sandbox.home + "/objects/\(bucket)"))
        let missing = try sandbox.run(
            [
                "compile", "--model", "s3://\(bucket)/models/none.tar.gz", "--framework", "ONNX", "--target-device",
                "ml_c5", "--output", "s3://\(bucket)/artifacts/",
            ], try s3Environment())
        #expect(missing.status != 0)
        #expect(
            missing.stderr.contains(
                "ClientError: InputConfiguration: cannot read s3://\(bucket)/models/none.tar.gz: NoSuchKey"))
    }

    @Test("the build farm in small: jobs in PostgreSQL, models and artifacts in S3, two workers")
    func farm() async throws {
        let sandbox = try JobSandbox(postgres: true)
        let bucket = "kiln-farm-" + UUID().uuidString.lowercased().prefix(8)
        _ = try boto3(
            "s3.create_bucket(Bucket=sys.argv[1]); s3.upload_file(sys.argv[2], sys.argv[1], 'in/digits.tar.gz')",
            [bucket, repositoryRoot + "/models/digits-cnn/model.tar.gz"])
        let environment = try s3Environment()
        for index in 0..<4 {
            let status = try sandbox.create(
                "farm-\(index)", output: "s3://\(bucket)/out/\(index)",
                model: index == 3 ? "s3://\(bucket)/in/missing.tar.gz" : "s3://\(bucket)/in/digits.tar.gz")
            #expect(status == 0)
        }
        let workers = try (0..<2).map { _ in
            try sandbox.startWorker(environment)
        }
        defer { for worker in workers { worker.terminate() } }
        for index in 0..<3 {
            let done = try await sandbox.waitFor("farm-\(index)", seconds: 90) { jobStatus($0) == "COMPLETED" }
            #expect(jobStatus(done) == "COMPLETED", "\(done["FailureReason"] ?? "")")
            #expect(
                (done["ModelArtifacts"] as? [String: Any])?["S3ModelArtifacts"] as? String
                    == "s3://\(bucket)/out/\(index)/digits-ml_c4.tar.gz")
        }
        let failed = try await sandbox.waitFor("farm-3", seconds: 30) { jobStatus($0) == "FAILED" }
        #expect(
            (failed["FailureReason"] as? String)?.hasPrefix(
                "ClientError: InputConfiguration: cannot read s3://\(bucket)/in/missing.tar.gz: NoSuchKey") == true)
        let sizes = try boto3(
            "print([s3.head_object(Bucket=sys.argv[1], Key=f'out/{i}/digits-ml_c4.tar.gz')['ContentLength'] > 0 for i in range(3)])",
            [bucket])
        #expect(sizes.trimmingCharacters(in: .whitespacesAndNewlines) == "[True, True, True]")
    }
}
