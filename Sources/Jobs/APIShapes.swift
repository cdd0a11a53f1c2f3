import Foundation
import Targets

// The compilation-job API's request and response shapes, member for member
// as `../shared/reference/compilation-job-api.json` names them. Swift names
// are the AWS names with a lower-case first letter; `AWSJSON` converts.
// Optional members are optionals; required ones are checked by `Validation`
// (a request may arrive without them and must get a ValidationException).

public struct InputConfig: Codable, Sendable, Equatable {
    public var s3Uri: String?
    public var dataInputConfig: String?
    public var framework: String?
    public var frameworkVersion: String?

    public init(s3Uri: String?, dataInputConfig: String? = nil, framework: String?, frameworkVersion: String? = nil) {
        self.s3Uri = s3Uri
        self.dataInputConfig = dataInputConfig
        self.framework = framework
        self.frameworkVersion = frameworkVersion
    }
}

public struct TargetPlatform: Codable, Sendable, Equatable {
    public var os: String?
    public var arch: String?
    public var accelerator: String?

    public init(os: String?, arch: String?, accelerator: String? = nil) {
        self.os = os
        self.arch = arch
        self.accelerator = accelerator
    }
}

public struct OutputConfig: Codable, Sendable, Equatable {
    public var s3OutputLocation: String?
    public var targetDevice: String?
    public var targetPlatform: TargetPlatform?
    public var compilerOptions: String?
    public var kmsKeyId: String?

    public init(
        s3OutputLocation: String?, targetDevice: String? = nil, targetPlatform: TargetPlatform? = nil,
        compilerOptions: String? = nil, kmsKeyId: String? = nil
    ) {
        self.s3OutputLocation = s3OutputLocation
        self.targetDevice = targetDevice
        self.targetPlatform = targetPlatform
        self.compilerOptions = compilerOptions
        self.kmsKeyId = kmsKeyId
    }
}

public struct StoppingCondition: Codable, Sendable, Equatable {
    public var maxRuntimeInSeconds: Int?
    public var maxWaitTimeInSeconds: Int?
    public var maxPendingTimeInSeconds: Int?

    public init(maxRuntimeInSeconds: Int? = nil, maxWaitTimeInSeconds: Int? = nil, maxPendingTimeInSeconds: Int? = nil)
    {
        self.maxRuntimeInSeconds = maxRuntimeInSeconds
        self.maxWaitTimeInSeconds = maxWaitTimeInSeconds
        self.maxPendingTimeInSeconds = maxPendingTimeInSeconds
    }
}

public struct Tag: Codable, Sendable, Equatable {
    public var key: String?
    public var value: String?

    public init(key: String?, value: String?) {
        self.key = key
        self.value = value
    }
}

public struct VpcConfig: Codable, Sendable, Equatable {
    public var securityGroupIds: [String]?
    public var subnets: [String]?
}

public struct CreateCompilationJobRequest: Codable, Sendable, Equatable {
    public var compilationJobName: String?
    public var roleArn: String?
    public var modelPackageVersionArn: String?
    public var inputConfig: InputConfig?
    public var outputConfig: OutputConfig?
    public var vpcConfig: VpcConfig?
    public var stoppingCondition: StoppingCondition?
    public var tags: [Tag]?

    public init(
        compilationJobName: String?, roleArn: String?, inputConfig: InputConfig?, outputConfig: OutputConfig?,
        stoppingCondition: StoppingCondition?, tags: [Tag]? = nil
    ) {
        self.compilationJobName = compilationJobName
        self.roleArn = roleArn
        self.inputConfig = inputConfig
        self.outputConfig = outputConfig
        self.stoppingCondition = stoppingCondition
        self.tags = tags
    }
}

public struct CreateCompilationJobResponse: Codable, Sendable, Equatable {
    public var compilationJobArn: String
}

/// Describe, Stop and Delete take only the name.
public struct CompilationJobNameRequest: Codable, Sendable, Equatable {
    public var compilationJobName: String?

    public init(compilationJobName: String?) { self.compilationJobName = compilationJobName }
}

public struct ModelArtifacts: Codable, Sendable, Equatable {
    public var s3ModelArtifacts: String
}

public struct ModelDigests: Codable, Sendable, Equatable {
    public var artifactDigest: String?
}

public struct DerivedInformation: Codable, Sendable, Equatable {
    public var derivedDataInputConfig: String?
}

/// Kiln's one extra Describe member: what happened in each stage, and the
/// graph passes' statistics. AWS clients ignore members they do not model.
public struct KilnDetails: Codable, Sendable, Equatable {
    public struct StageDetail: Codable, Sendable, Equatable {
        public var stageName: String
        public var startTime: Date
        public var endTime: Date
        public var status: String
        public var failureReason: String?
    }

    public struct PassDetail: Codable, Sendable, Equatable {
        public var passName: String
        public var changes: Int
    }

    public var stages: [StageDetail]
    public var passes: [PassDetail]
    /// Kernel objects taken from the cache instead of compiled.
    public var kernelCacheHits: Int?
    /// Claims of this job by a runner (2 when it was re-queued after a lost worker).
    public var attempts: Int
}

public struct DescribeCompilationJobResponse: Codable, Sendable, Equatable {
    public var compilationJobName: String
    public var compilationJobArn: String
    public var compilationJobStatus: String
    public var compilationStartTime: Date?
    public var compilationEndTime: Date?
    public var stoppingCondition: StoppingCondition
    public var inferenceImage: String?
    public var modelPackageVersionArn: String?
    public var creationTime: Date
    public var lastModifiedTime: Date
    public var failureReason: String
    public var modelArtifacts: ModelArtifacts
    public var modelDigests: ModelDigests?
    public var roleArn: String
    public var inputConfig: InputConfig
    public var outputConfig: OutputConfig
    public var vpcConfig: VpcConfig?
    public var derivedInformation: DerivedInformation?
    public var kilnDetails: KilnDetails?
}

public struct CompilationJobSummary: Codable, Sendable, Equatable {
    public var compilationJobName: String
    public var compilationJobArn: String
    public var creationTime: Date
    public var compilationStartTime: Date?
    public var compilationEndTime: Date?
    public var compilationTargetDevice: String?
    public var compilationTargetPlatformOs: String?
    public var compilationTargetPlatformArch: String?
    public var compilationTargetPlatformAccelerator: String?
    public var lastModifiedTime: Date?
    public var compilationJobStatus: String
}

public struct ListCompilationJobsRequest: Codable, Sendable, Equatable {
    public var nextToken: String?
    public var maxResults: Int?
    public var creationTimeAfter: Date?
    public var creationTimeBefore: Date?
    public var lastModifiedTimeAfter: Date?
    public var lastModifiedTimeBefore: Date?
    public var nameContains: String?
    public var statusEquals: String?
    public var sortBy: String?
    public var sortOrder: String?

    public init(
        nextToken: String? = nil, maxResults: Int? = nil, creationTimeAfter: Date? = nil,
        creationTimeBefore: Date? = nil, lastModifiedTimeAfter: Date? = nil, lastModifiedTimeBefore: Date? = nil,
        nameContains: String? = nil, statusEquals: String? = nil, sortBy: String? = nil, sortOrder: String? = nil
    ) {
        self.nextToken = nextToken
        self.maxResults = maxResults
        self.creationTimeAfter = creationTimeAfter
        self.creationTimeBefore = creationTimeBefore
        self.lastModifiedTimeAfter = lastModifiedTimeAfter
        self.lastModifiedTimeBefore = lastModifiedTimeBefore
        self.nameContains = nameContains
        self.statusEquals = statusEquals
        self.sortBy = sortBy
        self.sortOrder = sortOrder
    }
}

public struct ListCompilationJobsResponse: Codable, Sendable, Equatable {
    public var compilationJobSummaries: [CompilationJobSummary]
    public var nextToken: String?

    public init(compilationJobSummaries: [CompilationJobSummary], nextToken: String?) {
        self.compilationJobSummaries = compilationJobSummaries
        self.nextToken = nextToken
    }
}

/// The API's enums, as the contract lists them.
public enum APIEnums {
    public static let targetDevice = TargetCatalog.apiDeviceNames
    public static let framework = [
        "TENSORFLOW", "KERAS", "MXNET", "ONNX", "PYTORCH", "XGBOOST", "TFLITE", "DARKNET", "SKLEARN",
    ]
    public static let status = ["INPROGRESS", "COMPLETED", "FAILED", "STARTING", "STOPPING", "STOPPED"]
    public static let os = ["ANDROID", "LINUX"]
    public static let arch = ["X86_64", "X86", "ARM64", "ARM_EABI", "ARM_EABIHF"]
    public static let accelerator = ["INTEL_GRAPHICS", "MALI", "NVIDIA", "NNA"]
    public static let sortBy = ["Name", "CreationTime", "Status"]
    public static let sortOrder = ["Ascending", "Descending"]
}
