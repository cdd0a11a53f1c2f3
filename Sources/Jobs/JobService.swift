import Diagnostics
import Foundation
import Targets

/// The five operations of the compilation-job API over a job store: what the
/// CLI commands and the HTTP server both call. Validation, ARNs, paging and
/// the lifecycle rules for Stop and Delete live here; running jobs does not
/// (see `JobRunner`).
public struct JobService: Sendable {
    public var store: any JobStore
    /// ARNs name this region and 12-digit account.
    public var region: String
    public var account: String
    public var clock: @Sendable () -> Date
    /// Jobs an account may have queued or running at once (`KILN_MAX_ACTIVE_JOBS`, default 1000).
    public var activeJobLimit = JobService.defaultActiveJobLimit

    public init(
        store: any JobStore, region: String = JobService.defaultRegion(), account: String = JobService.defaultAccount(),
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.region = region
        self.account = account
        self.clock = clock
    }

    /// `KILN_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION`, else us-east-1 (read once: servers ask per request).
    public static func defaultRegion() -> String { processRegion }

    /// `KILN_ACCOUNT_ID`, else AWS's documentation account 123456789012.
    public static func defaultAccount() -> String { processAccount }

    private static let processRegion: String = {
        let environment = ProcessInfo.processInfo.environment
        return environment["KILN_REGION"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"]
            ?? "us-east-1"
    }()

    public static let defaultActiveJobLimit: Int =
        ProcessInfo.processInfo.environment["KILN_MAX_ACTIVE_JOBS"].flatMap(Int.init).map { max(1, $0) } ?? 1000

    private static let processAccount: String = ProcessInfo.processInfo.environment["KILN_ACCOUNT_ID"] ?? "123456789012"

    public func arn(_ name: String) -> String { "arn:aws:sagemaker:\(region):\(account):compilation-job/\(name)" }

    /// The default when StoppingCondition leaves MaxRuntimeInSeconds out.
    public static let defaultMaxRuntime = 900

    public func create(_ request: CreateCompilationJobRequest) throws -> CreateCompilationJobResponse {
        let record = try validatedRecord(request)
        try store.insert(record, activeLimit: activeJobLimit)
        return CreateCompilationJobResponse(compilationJobArn: record.arn)
    }

    /// Creates a job already claimed by `owner`, for a caller that runs it itself (`kiln compile`).
    public func createClaimed(_ request: CreateCompilationJobRequest, owner: String, lease: TimeInterval) throws
        -> JobRecord
    {
        var record = try validatedRecord(request)
        let now = clock()
        record.attempts = 1
        record.leaseOwner = owner
        record.leaseExpires = now.addingTimeInterval(lease)
        record.transition(to: .inProgress, at: now)
        try store.insert(record, activeLimit: activeJobLimit)
        return record
    }

    private func validatedRecord(_ request: CreateCompilationJobRequest) throws -> JobRecord {
        var validator = Validator()
        validator.create(request)
        try validator.check()
        if request.modelPackageVersionArn != nil {
            throw APIError(
                .validation,
                "ModelPackageVersionArn is not supported by Kiln (it has no model registry); give InputConfig instead")
        }
        guard request.inputConfig != nil else {
            throw APIError(
                .validation, "InputConfig is required (or ModelPackageVersionArn, which Kiln does not support)")
        }
        let output = request.outputConfig!
        switch (output.targetDevice, output.targetPlatform) {
        case (nil, nil), (.some, .some):
            throw APIError(.validation, "OutputConfig must name exactly one of TargetDevice and TargetPlatform")
        default: break
        }
        do {
            _ = try CompilerOptions.parse(output.compilerOptions)
            if let platform = output.targetPlatform {
                guard let os = platform.os, let arch = platform.arch else {
                    throw APIError(.validation, "TargetPlatform needs both Os and Arch")
                }
                try TargetCatalog.validatePlatform(
                    os: os, arch: arch, accelerator: platform.accelerator,
                    compilerOptions: output.compilerOptions)
            }
        } catch let error as KilnError {
            throw APIError(.validation, error.message)
        }
        let name = request.compilationJobName!
        return JobRecord(name: name, arn: arn(name), request: request, now: clock())
    }

    public func describe(_ request: CompilationJobNameRequest) throws -> DescribeCompilationJobResponse {
        try record(request).describe
    }

    /// The job's record, after reaping any lost runner's jobs so none shows INPROGRESS forever.
    public func record(_ request: CompilationJobNameRequest) throws -> JobRecord {
        var validator = Validator()
        validator.name(request.compilationJobName)
        try validator.check()
        _ = try store.reapExpired(now: clock())
        guard let record = try store.fetch(account: account, name: request.compilationJobName!) else {
            throw APIError.notFound(request.compilationJobName!)
        }
        return record
    }

    public func list(_ request: ListCompilationJobsRequest) throws -> ListCompilationJobsResponse {
        var validator = Validator()
        validator.list(request)
        try validator.check()
        _ = try store.reapExpired(now: clock())
        var query = JobQuery(account: account)
        query.nameContains = request.nameContains
        query.status = request.statusEquals.flatMap(JobStatus.init(rawValue:))
        query.creationTimeAfter = request.creationTimeAfter
        query.creationTimeBefore = request.creationTimeBefore
        query.lastModifiedTimeAfter = request.lastModifiedTimeAfter
        query.lastModifiedTimeBefore = request.lastModifiedTimeBefore
        query.sortBy = request.sortBy.flatMap(JobQuery.SortKey.init(rawValue:)) ?? .creationTime
        query.ascending = request.sortOrder == "Ascending"
        query.limit = request.maxResults ?? 10
        if let token = request.nextToken, !token.isEmpty {
            query.after = try PageToken.decode(token, sortBy: query.sortBy, ascending: query.ascending)
        }
        let (jobs, next) = try store.list(query)
        return ListCompilationJobsResponse(
            compilationJobSummaries: jobs.map(\.summary),
            nextToken: next.map { PageToken.encode($0, sortBy: query.sortBy, ascending: query.ascending) })
    }

    /// A queued job stops at once; a running one goes STOPPING and its runner stops it.
    public func stop(_ request: CompilationJobNameRequest) throws {
        let current = try record(request)
        let now = clock()
        try store.update(account: account, name: current.name) { record in
            switch record.status {
            case .starting:
                record.stopRequested = true
                record.end(.stopped, reason: "", at: now)
            case .inProgress:
                record.stopRequested = true
                record.transition(to: .stopping, at: now)
            case .stopping:
                break
            case .completed, .failed, .stopped:
                throw APIError(
                    .validation,
                    "Compilation job \(record.name) is already \(record.status.rawValue) and cannot be stopped")
            }
        }
    }

    /// Only jobs that have ended can be deleted; their artifacts stay where they were uploaded.
    public func delete(_ request: CompilationJobNameRequest) throws {
        let current = try record(request)
        guard current.status.isFinal else {
            throw APIError(
                .validation,
                "Compilation job \(current.name) is \(current.status.rawValue); stop it before deleting it")
        }
        try store.delete(account: account, name: current.name)
    }
}

/// NextToken: the cursor after the last job of a page, with the order it belongs to, base64 JSON.
enum PageToken {
    struct Payload: Codable {
        var cursor: JobCursor
        var sortBy: String
        var ascending: Bool
    }

    static func encode(_ cursor: JobCursor, sortBy: JobQuery.SortKey, ascending: Bool) -> String {
        let payload = Payload(cursor: cursor, sortBy: sortBy.rawValue, ascending: ascending)
        return ((try? JSONEncoder().encode(payload)) ?? Data()).base64EncodedString()
    }

    static func decode(_ token: String, sortBy: JobQuery.SortKey, ascending: Bool) throws -> JobCursor {
        guard let data = Data(base64Encoded: token),
            let payload = try? JSONDecoder().decode(Payload.self, from: data)
        else { throw APIError(.validation, "Invalid pagination token") }
        guard payload.sortBy == sortBy.rawValue, payload.ascending == ascending else {
            throw APIError(.validation, "The pagination token was issued for a different SortBy or SortOrder")
        }
        return payload.cursor
    }
}
