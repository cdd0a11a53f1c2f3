import Foundation
import Jobs
import TestSupport
import Testing

@testable import APIServer

/// A store whose every call fails the way a broken disk would.
struct BrokenStore: JobStore {
    struct DiskError: Error {}
    func insert(_ record: JobRecord, activeLimit: Int) throws { throw DiskError() }
    func fetch(account: String, name: String) throws -> JobRecord? { throw DiskError() }
    func list(_ query: JobQuery) throws -> (jobs: [JobRecord], next: JobCursor?) { throw DiskError() }
    func update(account: String, name: String, _ change: (inout JobRecord) throws -> Void) throws -> JobRecord? {
        throw DiskError()
    }
    func delete(account: String, name: String) throws { throw DiskError() }
    func claim(owner: String, name: String?, now: Date, lease: TimeInterval) throws -> JobRecord? { throw DiskError() }
    func reapExpired(now: Date) throws -> [String] { [] }
    func requeue(account: String, name: String, owner: String, now: Date) throws { throw DiskError() }
    func heartbeatWorker(id: String, now: Date) throws {}
    func removeWorker(id: String) throws {}
    func reserveRunnerStart(now: Date, within: TimeInterval) throws -> Bool { false }
    func queuedCount() throws -> Int { 0 }
}

@Suite("the AWS JSON 1.1 wire format")
struct WireFormatTests {
    let operations = Operations()

    func service(_ directory: TemporaryDirectory, account: String = "111122223333") throws -> JobService {
        JobService(
            store: try SQLiteJobStore(path: directory.path + "/jobs.sqlite"), region: "us-west-2", account: account)
    }

    func json(_ reply: Operations.Reply) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any]) ?? [:]
    }

    static let create = #"""
        {"CompilationJobName": "golden", "RoleArn": "arn:aws:iam::111122223333:role/kiln",
         "InputConfig": {"S3Uri": "s3://models/golden.tar.gz", "Framework": "ONNX", "DataInputConfig": "{\"x\": [1,3]}"},
         "OutputConfig": {"S3OutputLocation": "s3://out/golden", "TargetDevice": "ml_c5"},
         "StoppingCondition": {"MaxRuntimeInSeconds": 120}}
        """#

    @Test("a golden request and response for each operation")
    func golden() throws {
        let directory = try TemporaryDirectory()
        let service = try service(directory)
        let created = operations.handle(
            target: "SageMaker.CreateCompilationJob", body: Data(Self.create.utf8), service: service)
        #expect(created.status == 200)
        #expect(
            String(decoding: created.body, as: UTF8.self)
                == #"{"CompilationJobArn":"arn:aws:sagemaker:us-west-2:111122223333:compilation-job/golden"}"#)
        let name = Data(#"{"CompilationJobName": "golden"}"#.utf8)
        let described = operations.handle(target: "SageMaker.DescribeCompilationJob", body: name, service: service)
        let describe = json(described)
        #expect(described.status == 200)
        #expect(describe["CompilationJobStatus"] as? String == "STARTING")
        #expect(describe["FailureReason"] as? String == "")
        #expect((describe["ModelArtifacts"] as? [String: Any])?["S3ModelArtifacts"] as? String == "")
        #expect(describe["CreationTime"] is NSNumber)
        #expect((describe["InputConfig"] as? [String: Any])?["DataInputConfig"] as? String == #"{"x": [1,3]}"#)
        #expect((describe["StoppingCondition"] as? [String: Any])?["MaxRuntimeInSeconds"] as? Int == 120)
        let listed = json(
            operations.handle(target: "SageMaker.ListCompilationJobs", body: Data("{}".utf8), service: service))
        let summaries = listed["CompilationJobSummaries"] as? [[String: Any]]
        #expect(summaries?.count == 1 && summaries?.first?["CompilationTargetDevice"] as? String == "ml_c5")
        #expect(listed["NextToken"] == nil)
        let stopped = operations.handle(target: "SageMaker.StopCompilationJob", body: name, service: service)
        #expect(stopped.status == 200 && String(decoding: stopped.body, as: UTF8.self) == "{}")
        let deleted = operations.handle(target: "SageMaker.DeleteCompilationJob", body: name, service: service)
        #expect(deleted.status == 200)
    }

    @Test("every error code AWS uses, with its status and type")
    func errors() throws {
        let directory = try TemporaryDirectory()
        let service = try service(directory)
        func code(_ target: String?, _ body: String, _ on: JobService? = nil) -> (Int, String?, String?) {
            let reply = operations.handle(target: target, body: Data(body.utf8), service: on ?? service)
            return (reply.status, reply.errorType, json(reply)["__type"] as? String)
        }
        let name = #"{"CompilationJobName": "golden"}"#
        #expect(code("SageMaker.CreateCompilationJob", Self.create) == (200, nil, nil))
        #expect(code("SageMaker.CreateCompilationJob", Self.create) == (400, "ResourceInUse", "ResourceInUse"))
        #expect(code("SageMaker.DescribeCompilationJob", #"{"CompilationJobName": "other"}"#).1 == "ResourceNotFound")
        #expect(code("SageMaker.DescribeCompilationJob", #"{"CompilationJobName": "a b"}"#).1 == "ValidationException")
        #expect(code("SageMaker.DescribeCompilationJob", "{not json").1 == "SerializationException")
        #expect(code("SageMaker.ListCompilationJobs", #"{"MaxResults": "ten"}"#).1 == "SerializationException")
        #expect(
            code("SageMaker.CreateTrainingJob", "{}") == (400, "UnknownOperationException", "UnknownOperationException")
        )
        #expect(code(nil, "{}").1 == "UnknownOperationException")
        let broken = JobService(store: BrokenStore(), region: "us-west-2", account: "111122223333")
        let failed = operations.handle(
            target: "SageMaker.DescribeCompilationJob", body: Data(name.utf8), service: broken)
        #expect(failed.status == 500 && failed.errorType == "InternalFailure")
        #expect(!String(decoding: failed.body, as: UTF8.self).contains("DiskError"))
        var limited = try self.service(directory, account: "555555555555")
        limited.activeJobLimit = 1
        let first = Self.create.replacingOccurrences(of: "golden", with: "first")
        let second = Self.create.replacingOccurrences(of: "golden", with: "second")
        #expect(code("SageMaker.CreateCompilationJob", first, limited).0 == 200)
        #expect(
            code("SageMaker.CreateCompilationJob", second, limited) == (
                400, "ResourceLimitExceeded", "ResourceLimitExceeded"
            ))
        // Another account's job does not exist for you.
        let other = try self.service(directory, account: "999988887777")
        #expect(code("SageMaker.DescribeCompilationJob", name, other).1 == "ResourceNotFound")
        #expect(code("SageMaker.StopCompilationJob", name, other).1 == "ResourceNotFound")
        #expect(
            (json(operations.handle(target: "SageMaker.ListCompilationJobs", body: Data(), service: other))[
                "CompilationJobSummaries"] as? [Any])?.isEmpty == true)
    }
}
