import Foundation
import Jobs

/// The AWS JSON 1.1 protocol over `JobService`: the operation named by
/// `X-Amz-Target`, the request body decoded into its shape, the response
/// encoded with epoch-second timestamps, errors as `{"__type", "message"}`.
public struct Operations: Sendable {
    /// An HTTP answer: status, body, and the error code for `x-amzn-ErrorType`.
    public struct Reply: Sendable {
        public var status: Int
        public var body: Data
        public var errorType: String?

        static func error(_ code: String, _ message: String, status: Int) -> Reply {
            let object = ["__type": code, "message": message]
            let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return Reply(status: status, body: body, errorType: code)
        }
    }

    public static let targetPrefix = "SageMaker."
    public static let names = [
        "CreateCompilationJob", "DescribeCompilationJob", "ListCompilationJobs", "StopCompilationJob",
        "DeleteCompilationJob",
    ]

    let encoder = AWSJSON.encoder()
    let decoder = AWSJSON.decoder()
    let describeCache = DescribeCache()

    public init() {}

    /// Runs one operation for `service` (already scoped to the caller's account).
    public func handle(target: String?, body: Data, service: JobService) -> Reply {
        guard let target, target.hasPrefix(Self.targetPrefix),
            Self.names.contains(String(target.dropFirst(Self.targetPrefix.count)))
        else {
            return .error(
                "UnknownOperationException", "Unknown operation \(target ?? "(no X-Amz-Target)")", status: 400)
        }
        let operation = String(target.dropFirst(Self.targetPrefix.count))
        do {
            switch operation {
            case "CreateCompilationJob":
                return try ok(try service.create(decode(CreateCompilationJobRequest.self, body)))
            case "DescribeCompilationJob":
                // Clients poll Describe: an unchanged job's response is encoded once.
                let record = try service.record(decode(CompilationJobNameRequest.self, body))
                if let cached = describeCache.response(for: record) { return Reply(status: 200, body: cached) }
                let reply = try ok(record.describe)
                describeCache.store(reply.body, for: record)
                return reply
            case "ListCompilationJobs":
                return try ok(try service.list(decode(ListCompilationJobsRequest.self, body)))
            case "StopCompilationJob":
                try service.stop(decode(CompilationJobNameRequest.self, body))
                return Reply(status: 200, body: Data("{}".utf8))
            default:
                try service.delete(decode(CompilationJobNameRequest.self, body))
                return Reply(status: 200, body: Data("{}".utf8))
            }
        } catch let error as SerializationFailure {
            return .error("SerializationException", error.message, status: 400)
        } catch let error as APIError {
            if error.code == .internalFailure {
                return .error(
                    "InternalFailure", "The request processing has failed because of an unknown error.", status: 500)
            }
            return .error(error.code.rawValue, error.message, status: error.httpStatus)
        } catch {
            return .error(
                "InternalFailure", "The request processing has failed because of an unknown error.", status: 500)
        }
    }

    struct SerializationFailure: Error { var message: String }

    func decode<T: Decodable>(_ type: T.Type, _ body: Data) throws -> T {
        let text = body.isEmpty ? Data("{}".utf8) : body
        do {
            return try decoder.decode(T.self, from: text)
        } catch DecodingError.typeMismatch(let expected, let context) {
            let path = context.codingPath.map { AWSJSON.pascalCase($0.stringValue) }.joined(separator: ".")
            throw SerializationFailure(message: "Expected \(expected) at \(path.isEmpty ? "the top level" : path)")
        } catch {
            throw SerializationFailure(message: "The request body is not valid JSON for this operation")
        }
    }

    func ok<T: Encodable>(_ value: T) throws -> Reply {
        Reply(status: 200, body: try encoder.encode(value))
    }
}

/// Describe responses of jobs as they were when encoded, by ARN.
final class DescribeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (record: JobRecord, body: Data)] = [:]

    func response(for record: JobRecord) -> Data? {
        lock.withLock {
            guard let entry = entries[record.arn], entry.record == record else { return nil }
            return entry.body
        }
    }

    func store(_ body: Data, for record: JobRecord) {
        lock.withLock {
            if entries.count >= 4096 { entries.removeAll(keepingCapacity: true) }
            entries[record.arn] = (record, body)
        }
    }
}
