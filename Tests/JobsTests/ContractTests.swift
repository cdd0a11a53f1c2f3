import Foundation
import Testing

@testable import Jobs

/// Checks a JSON value against a shape of the API contract (a copy of
/// ../shared/reference/compilation-job-api.json): required members present,
/// no members the shape lacks (Kiln's one documented extra aside), enums,
/// lengths, patterns, and timestamps as numbers.
struct Contract {
    let shapes: [String: [String: Any]]

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "compilation-job-api", withExtension: "json"))
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        shapes = try #require(root["shapes"] as? [String: [String: Any]])
    }

    func problems(_ value: Any, shape name: String, at path: String = "") -> [String] {
        guard let shape = shapes[name] else { return ["\(path): unknown shape \(name)"] }
        switch shape["type"] as? String {
        case "structure":
            guard let object = value as? [String: Any] else { return ["\(path): not an object"] }
            let members = shape["members"] as? [String: [String: Any]] ?? [:]
            var found: [String] = []
            for required in shape["required"] as? [String] ?? [] where object[required] == nil {
                found.append("\(path).\(required): required but missing")
            }
            for (key, member) in object {
                if key == "KilnDetails" && name == "DescribeCompilationJobResponse" { continue }
                guard let memberShape = members[key]?["shape"] as? String else {
                    found.append("\(path).\(key): not a member of \(name)")
                    continue
                }
                found += problems(member, shape: memberShape, at: "\(path).\(key)")
            }
            return found
        case "list":
            guard let array = value as? [Any] else { return ["\(path): not a list"] }
            let member = (shape["member"] as? [String: Any])?["shape"] as? String ?? ""
            return array.enumerated().flatMap { problems($0.element, shape: member, at: "\(path)[\($0.offset)]") }
        case "timestamp":
            return value is NSNumber ? [] : ["\(path): a timestamp must be epoch seconds on the wire"]
        case "integer":
            return value is NSNumber ? [] : ["\(path): not an integer"]
        case "string":
            guard let text = value as? String else { return ["\(path): not a string"] }
            if let values = shape["enum"] as? [String], !values.contains(text) {
                return ["\(path): '\(text)' is not one of \(values)"]
            }
            if let max = shape["max"] as? Int, text.count > max { return ["\(path): longer than \(max)"] }
            if let min = shape["min"] as? Int, text.count < min { return ["\(path): shorter than \(min)"] }
            // Kiln's local locations (paths, file://) are a documented extension of S3Uri.
            if name == "S3Uri", text.hasPrefix("/") || text.hasPrefix("file://") || text.isEmpty { return [] }
            if let pattern = shape["pattern"] as? String, !Validator.matches(text, pattern) {
                return ["\(path): '\(text)' does not match \(pattern)"]
            }
            return []
        default:
            return []
        }
    }
}

@Suite("responses match the API contract")
struct ContractTests {
    @Test("Describe and List, at every status, as AWS JSON 1.1 puts them on the wire")
    func wireShapes() async throws {
        let contract = try Contract()
        let fixture = try Fixture()
        let service = JobService(store: fixture.store)
        let encoder = AWSJSON.encoder()
        func json<T: Encodable>(_ value: T) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: encoder.encode(value)) as? [String: Any])
        }
        _ = try service.create(fixture.request("done"))
        _ = try service.create(fixture.request("queued"))
        _ = try await JobRunner(store: fixture.store, environment: fixture.environment()).runNext(name: "done")
        for name in ["done", "queued"] {
            let describe = try json(try service.describe(.init(compilationJobName: name)))
            #expect(contract.problems(describe, shape: "DescribeCompilationJobResponse") == [])
            let created = try #require((describe["CreationTime"] as? NSNumber)?.doubleValue)
            let modified = try #require((describe["LastModifiedTime"] as? NSNumber)?.doubleValue)
            #expect(created <= modified)
            if let start = (describe["CompilationStartTime"] as? NSNumber)?.doubleValue,
                let end = (describe["CompilationEndTime"] as? NSNumber)?.doubleValue
            {
                #expect(created <= start && start <= end)
            }
        }
        let list = try json(try service.list(ListCompilationJobsRequest()))
        #expect(contract.problems(list, shape: "ListCompilationJobsResponse") == [])
        #expect((list["CompilationJobSummaries"] as? [Any])?.count == 2)
        let create = try json(CreateCompilationJobResponse(compilationJobArn: service.arn("x")))
        #expect(contract.problems(create, shape: "CreateCompilationJobResponse") == [])
    }

    @Test("requests decode from the member names and timestamp forms AWS clients send")
    func decoding() throws {
        let text = #"""
            {"CompilationJobName": "j-1", "RoleArn": "arn:aws:iam::123456789012:role/r",
             "InputConfig": {"S3Uri": "s3://b/m.tar.gz", "Framework": "ONNX", "DataInputConfig": "{\"x\": [1]}"},
             "OutputConfig": {"S3OutputLocation": "s3://b/out", "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}},
             "StoppingCondition": {"MaxRuntimeInSeconds": 60}, "Tags": [{"Key": "k", "Value": "v"}]}
            """#
        let request = try AWSJSON.decoder().decode(CreateCompilationJobRequest.self, from: Data(text.utf8))
        #expect(request.inputConfig?.s3Uri == "s3://b/m.tar.gz")
        #expect(request.outputConfig?.targetPlatform?.arch == "X86_64")
        #expect(request.tags == [Tag(key: "k", value: "v")])
        for form in ["1800000000", "1800000000.5", "\"2027-01-15T08:00:00Z\"", "\"2027-01-15T08:00:00.250000+00:00\""] {
            let list = try AWSJSON.decoder().decode(
                ListCompilationJobsRequest.self, from: Data("{\"CreationTimeAfter\": \(form)}".utf8))
            #expect(list.creationTimeAfter != nil, "\(form)")
        }
        #expect(
            AWSJSON.isoTimestamp(Date(timeIntervalSince1970: 1_800_000_000.25), timeZone: TimeZone(identifier: "UTC")!)
                == "2027-01-15T08:00:00.250000+00:00")
        // The aws CLI's layout: members in declaration order, absent optionals left out, indent 4, `[]` when empty.
        struct Inner {
            var c: Int
            var d: String
        }
        struct Outer {
            var a: [String]
            var b: Inner
            var e: String?
        }
        #expect(
            AWSJSON.cliText(Outer(a: [], b: Inner(c: 1, d: "x,y:{"), e: nil))
                == "{\n    \"A\": [],\n    \"B\": {\n        \"C\": 1,\n        \"D\": \"x,y:{\"\n    }\n}")
    }
}
