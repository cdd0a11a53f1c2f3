import Foundation
import TestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite("kiln batch and kiln worker", .serialized)
struct BatchTests {
    /// A CreateCompilationJob request as a file of a batch directory.
    func request(_ name: String, model: String, config: String = #"{\"image\": [1,1,8,8]}"#) -> String {
        #"""
        {"CompilationJobName": "\#(name)", "RoleArn": "arn:aws:iam::123456789012:role/kiln-test",
         "InputConfig": {"S3Uri": "\#(model)", "Framework": "ONNX", "DataInputConfig": "\#(config)"},
         "OutputConfig": {"S3OutputLocation": "s3://batch/\#(name)", "TargetDevice": "ml_c4"},
         "StoppingCondition": {"MaxRuntimeInSeconds": 300}}
        """#
    }

    @Test("a batch that partly fails: summary table, JUnit and JSON reports, and a failing exit status")
    func mixedBatch() throws {
        let sandbox = try JobSandbox()
        let jobs = sandbox.directory.path + "/jobs"
        try FileManager.default.createDirectory(atPath: jobs, withIntermediateDirectories: true)
        let model = repositoryRoot + "/models/digits-cnn/model.tar.gz"
        try request("good-1", model: model).write(toFile: jobs + "/1.json", atomically: true, encoding: .utf8)
        try request("good-2", model: model).write(toFile: jobs + "/2.json", atomically: true, encoding: .utf8)
        try request("missing-model", model: "s3://nowhere/m.tar.gz").write(
            toFile: jobs + "/3.json", atomically: true, encoding: .utf8)
        try request("bad name", model: model).write(toFile: jobs + "/4.json", atomically: true, encoding: .utf8)
        try "{not json".write(toFile: jobs + "/5.json", atomically: true, encoding: .utf8)
        let junit = sandbox.directory.path + "/junit.xml"
        let json = sandbox.directory.path + "/report.json"
        let result = try kiln(
            ["batch", jobs, "--wait", "--report-junit", junit, "--report-json", json], home: sandbox.home,
            environment: [:])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stdout.contains("5 jobs: 2 COMPLETED, 3 FAILED"), "\(result.stdout)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains(#"tests="5" failures="3""#))
        #expect(xml.components(separatedBy: "<testcase ").count == 6)
        #expect(xml.contains(#"name="good-1""#) && xml.contains(#"name="missing-model""#))
        #expect(xml.contains("ClientError: InputConfiguration"))
        #expect(xml.contains("ValidationException: 1 validation error detected"))
        let report =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any]
        #expect(report?["failures"] as? Int == 3)
        let items = report?["jobs"] as? [[String: Any]] ?? []
        #expect(
            items.first { $0["name"] as? String == "good-1" }?["artifact"] as? String
                == "s3://batch/good-1/model-ml_c4.tar.gz")
        // XML stays well-formed whatever the reasons hold.
        #expect(throws: Never.self) { _ = try XMLDocument(xmlString: xml) }
        #expect(result.stdout.contains("good-1") && result.stdout.contains("COMPLETED"))
    }

    @Test("kiln worker serves Prometheus metrics and drains on SIGTERM, re-queueing a job still building")
    func workerMetricsAndDrain() async throws {
        let sandbox = try JobSandbox()
        // The first job's model is missing: it fails at fetch, at once.
        #expect(try sandbox.create("quick-failure", model: "s3://nowhere/model.tar.gz") == 0)
        let (process, port) = try startKiln(
            ["worker", "--metrics-port", "0", "--grace-seconds", "1"],
            environment: ["KILN_HOME": sandbox.home, "KILN_NO_AUTOSTART": "1", "CC": sandbox.slowCC])
        defer { if process.isRunning { process.terminate() } }
        let failed = try await sandbox.waitFor("quick-failure", seconds: 30) { jobStatus($0) == "FAILED" }
        #expect(jobStatus(failed) == "FAILED")
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let metrics = String(decoding: data, as: UTF8.self)
        #expect(metrics.contains("kiln_jobs_total{status=\"FAILED\"} 1"), "\(metrics)")
        #expect(metrics.contains("kiln_jobs_failed_total 1"))
        #expect(metrics.contains("kiln_queue_depth 0"))
        #expect(metrics.contains("kiln_stage_duration_seconds_count{stage=\"fetch\"} 1"))
        // A job whose build is slow, then SIGTERM: the worker exits within its grace period and the job is queued again.
        #expect(try sandbox.create("slow") == 0)
        _ = try await sandbox.waitFor("slow", seconds: 30) { jobStatus($0) == "INPROGRESS" }
        kill(process.processIdentifier, SIGTERM)
        let signalled = Date()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(signalled) < 10)
        #expect(process.terminationStatus == 0)
        #expect(jobStatus(try sandbox.status("slow")) == "STARTING")
    }
}
