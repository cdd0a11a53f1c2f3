import Foundation
import Pipeline

/// A compilation job's status, as the API spells it.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
    case starting = "STARTING"
    case inProgress = "INPROGRESS"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case stopping = "STOPPING"
    case stopped = "STOPPED"

    /// The job will not change any more.
    public var isFinal: Bool { self == .completed || self == .failed || self == .stopped }
}

/// Everything Kiln knows about one job: the request as created, where the
/// lifecycle is, and what the runner produced. Stores keep it whole; the
/// API's Describe and List responses are views of it.
public struct JobRecord: Codable, Sendable, Equatable {
    public var name: String
    public var arn: String
    public var request: CreateCompilationJobRequest
    public var status: JobStatus
    public var creationTime: Date
    public var lastModifiedTime: Date
    public var startTime: Date?
    public var endTime: Date?
    /// "" while none, as Describe reports it.
    public var failureReason: String = ""
    public var artifactURI: String?
    public var artifactDigest: String?
    public var derivedDataInputConfig: String?
    public var stages: [StageRecord] = []
    public var passes: [KilnDetails.PassDetail] = []
    public var kernelCacheHits: Int?
    /// How many times a runner claimed the job.
    public var attempts = 0
    public var stopRequested = false
    /// The runner holding the job and until when, renewed by its heartbeat.
    public var leaseOwner: String?
    public var leaseExpires: Date?

    public init(name: String, arn: String, request: CreateCompilationJobRequest, now: Date) {
        self.name = name
        self.arn = arn
        self.request = request
        status = .starting
        creationTime = now
        lastModifiedTime = now
    }

    /// The 12-digit account the job belongs to: the ARN's fifth field.
    public var account: String {
        let fields = arn.split(separator: ":", omittingEmptySubsequences: false)
        return fields.count > 4 ? String(fields[4]) : ""
    }

    /// Moves to a new status and stamps the change.
    public mutating func transition(to status: JobStatus, at now: Date) {
        self.status = status
        lastModifiedTime = now
        if status == .inProgress, startTime == nil { startTime = now }
        if status.isFinal {
            endTime = now
            leaseOwner = nil
            leaseExpires = nil
        }
    }

    /// Ends the job with a reason (FAILED or STOPPED).
    public mutating func end(_ status: JobStatus, reason: String, at now: Date) {
        failureReason = String(reason.prefix(1024))
        transition(to: status, at: now)
    }

    public var describe: DescribeCompilationJobResponse {
        DescribeCompilationJobResponse(
            compilationJobName: name, compilationJobArn: arn, compilationJobStatus: status.rawValue,
            compilationStartTime: startTime, compilationEndTime: endTime,
            stoppingCondition: request.stoppingCondition ?? StoppingCondition(),
            inferenceImage: nil, modelPackageVersionArn: request.modelPackageVersionArn,
            creationTime: creationTime, lastModifiedTime: lastModifiedTime, failureReason: failureReason,
            modelArtifacts: ModelArtifacts(s3ModelArtifacts: status == .completed ? artifactURI ?? "" : ""),
            modelDigests: artifactDigest.map { ModelDigests(artifactDigest: $0) },
            roleArn: request.roleArn ?? "",
            inputConfig: request.inputConfig ?? InputConfig(s3Uri: nil, framework: nil),
            outputConfig: request.outputConfig ?? OutputConfig(s3OutputLocation: nil),
            vpcConfig: request.vpcConfig,
            derivedInformation: derivedDataInputConfig.map { DerivedInformation(derivedDataInputConfig: $0) },
            kilnDetails: KilnDetails(
                stages: stages.map {
                    KilnDetails.StageDetail(
                        stageName: $0.stage.rawValue, startTime: $0.start, endTime: $0.end, status: $0.status.rawValue,
                        failureReason: $0.failureReason)
                },
                passes: passes, kernelCacheHits: kernelCacheHits, attempts: attempts))
    }

    public var summary: CompilationJobSummary {
        let platform = request.outputConfig?.targetPlatform
        return CompilationJobSummary(
            compilationJobName: name, compilationJobArn: arn, creationTime: creationTime,
            compilationStartTime: startTime, compilationEndTime: endTime,
            compilationTargetDevice: request.outputConfig?.targetDevice,
            compilationTargetPlatformOs: platform?.os, compilationTargetPlatformArch: platform?.arch,
            compilationTargetPlatformAccelerator: platform?.accelerator, lastModifiedTime: lastModifiedTime,
            compilationJobStatus: status.rawValue)
    }
}
