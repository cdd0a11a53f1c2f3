/// An error of the compilation-job API, by AWS's error code: what the CLI
/// prints as "An error occurred (Code) when calling the X operation: ..."
/// and the HTTP server sends as `{"__type": Code, "message": ...}`.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case validation = "ValidationException"
        case resourceNotFound = "ResourceNotFound"
        case resourceInUse = "ResourceInUse"
        case resourceLimitExceeded = "ResourceLimitExceeded"
        case internalFailure = "InternalFailure"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// 400 for the caller's mistakes, 500 for Kiln's.
    public var httpStatus: Int { code == .internalFailure ? 500 : 400 }

    public var description: String { "\(code.rawValue): \(message)" }

    static func notFound(_ name: String) -> APIError {
        APIError(.resourceNotFound, "Could not find compilation job with name \(name)")
    }

    /// CreateCompilationJob with a name the account already uses.
    static func alreadyExists(_ name: String) -> APIError {
        APIError(.resourceInUse, "Compilation job \(name) already exists")
    }

    /// CreateCompilationJob while `active` jobs already use up the account's `limit`.
    static func activeJobLimit(_ limit: Int, active: Int) -> APIError {
        APIError(
            .resourceLimitExceeded,
            "The account-level service limit 'Number of concurrent compilation jobs' is \(limit) jobs, "
                + "with current utilization of \(active) jobs; wait for jobs to end or stop some")
    }
}
