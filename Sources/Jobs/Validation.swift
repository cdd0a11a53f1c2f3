import Foundation

/// Checks a request against the contract's constraints and collects every
/// violation into one AWS-style ValidationException:
/// `2 validation errors detected: Value 'x' at 'a' failed to satisfy constraint: ...; Value null at 'b' ...`.
struct Validator {
    private(set) var violations: [String] = []

    /// The contract's patterns, anchored as AWS's messages print them.
    enum Pattern {
        static let entityName = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
        static let roleArn = #"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$"#
        static let s3Uri = "^(https|s3)://([^/]+)/?(.*)$"
        static let frameworkVersion = #"^[0-9]\.[A-Za-z0-9.]+$"#
        static let kmsKeyId = "^[a-zA-Z0-9:/_-]*$"
        static let nameContains = #"^[a-zA-Z0-9\-]+$"#
        static let tag = #"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"#
        static let vpcId = "^[-0-9a-zA-Z]+$"
        static let modelPackageArn =
            #"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/[\S]{1,2048}$"#
        static let dataInputConfig = #"^[\S\s]+$"#
    }

    private static func display(_ value: String) -> String { "'\(value)'" }

    mutating func violation(_ value: String?, at member: String, _ constraint: String) {
        let shown = value.map(Self.display) ?? "null"
        violations.append("Value \(shown) at '\(member)' failed to satisfy constraint: \(constraint)")
    }

    mutating func required(_ value: Any?, at member: String) -> Bool {
        guard value != nil else {
            violation(nil, at: member, "Member must not be null")
            return false
        }
        return true
    }

    mutating func string(
        _ value: String?, at member: String, min: Int? = nil, max: Int? = nil, pattern: String? = nil,
        required isRequired: Bool = false
    ) {
        guard let value else {
            if isRequired { violation(nil, at: member, "Member must not be null") }
            return
        }
        let length = value.count
        if let min, length < min {
            violation(value, at: member, "Member must have length greater than or equal to \(min)")
        } else if let max, length > max {
            violation(value, at: member, "Member must have length less than or equal to \(max)")
        } else if let pattern, !Self.matches(value, pattern) {
            violation(value, at: member, "Member must satisfy regular expression pattern: \(pattern)")
        }
    }

    mutating func oneOf(_ value: String?, at member: String, _ allowed: [String], required isRequired: Bool = false) {
        guard let value else {
            if isRequired { violation(nil, at: member, "Member must not be null") }
            return
        }
        if !allowed.contains(value) {
            violation(value, at: member, "Member must satisfy enum value set: [\(allowed.joined(separator: ", "))]")
        }
    }

    mutating func integer(_ value: Int?, at member: String, min: Int? = nil, max: Int? = nil) {
        guard let value else { return }
        if let min, value < min {
            violation(String(value), at: member, "Member must have value greater than or equal to \(min)")
        } else if let max, value > max {
            violation(String(value), at: member, "Member must have value less than or equal to \(max)")
        }
    }

    mutating func count(_ count: Int?, at member: String, min: Int? = nil, max: Int? = nil) {
        guard let count else { return }
        if let min, count < min {
            violation(nil, at: member, "Member must have length greater than or equal to \(min)")
        } else if let max, count > max {
            violation(nil, at: member, "Member must have length less than or equal to \(max)")
        }
    }

    /// The collected violations as one error, or nothing.
    func check() throws {
        guard !violations.isEmpty else { return }
        let count = violations.count
        throw APIError(
            .validation,
            "\(count) validation error\(count == 1 ? "" : "s") detected: \(violations.joined(separator: "; "))")
    }

    static func matches(_ value: String, _ pattern: String) -> Bool {
        // Job names are checked on every request: by hand, without a regex engine.
        if pattern == Pattern.entityName { return isEntityName(value) }
        guard let regex = RegexCache.shared.regex(pattern) else { return false }
        return (try? regex.wholeMatch(in: value)) != nil
    }

    /// `^[a-zA-Z0-9](-*[a-zA-Z0-9])*$`: letters and digits, hyphens only between them.
    static func isEntityName(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        func alphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
        }
        guard let first = bytes.first, let last = bytes.last, alphanumeric(first), alphanumeric(last) else {
            return false
        }
        return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
    }
}

/// Compiled patterns, built once each (compiling a Regex costs far more than matching one).
final class RegexCache: @unchecked Sendable {
    static let shared = RegexCache()
    private let lock = NSLock()
    private var compiled: [String: Regex<AnyRegexOutput>] = [:]

    func regex(_ pattern: String) -> Regex<AnyRegexOutput>? {
        lock.withLock {
            if let regex = compiled[pattern] { return regex }
            guard let regex = try? Regex(pattern) else { return nil }
            compiled[pattern] = regex
            return regex
        }
    }
}

extension Validator {
    /// Kiln also writes artifacts to local directories: `file://` URIs and absolute paths pass
    /// where the contract has an S3Uri (a documented extension for local use).
    mutating func location(_ value: String?, at member: String, required isRequired: Bool) {
        if let value, value.hasPrefix("file://") || value.hasPrefix("/") {
            string(value, at: member, max: 1024)
        } else {
            string(value, at: member, max: 1024, pattern: Pattern.s3Uri, required: isRequired)
        }
    }

    mutating func name(_ value: String?, at member: String = "compilationJobName") {
        string(value, at: member, min: 1, max: 63, pattern: Pattern.entityName, required: true)
    }

    mutating func create(_ request: CreateCompilationJobRequest) {
        name(request.compilationJobName)
        string(request.roleArn, at: "roleArn", min: 20, max: 2048, pattern: Pattern.roleArn, required: true)
        string(
            request.modelPackageVersionArn, at: "modelPackageVersionArn", min: 1, max: 2048,
            pattern: Pattern.modelPackageArn)
        if let input = request.inputConfig {
            location(input.s3Uri, at: "inputConfig.s3Uri", required: true)
            string(
                input.dataInputConfig, at: "inputConfig.dataInputConfig", min: 1, max: 16384,
                pattern: Pattern.dataInputConfig)
            oneOf(input.framework, at: "inputConfig.framework", APIEnums.framework, required: true)
            string(
                input.frameworkVersion, at: "inputConfig.frameworkVersion", min: 3, max: 10,
                pattern: Pattern.frameworkVersion)
        }
        if required(request.outputConfig, at: "outputConfig"), let output = request.outputConfig {
            location(output.s3OutputLocation, at: "outputConfig.s3OutputLocation", required: true)
            oneOf(output.targetDevice, at: "outputConfig.targetDevice", APIEnums.targetDevice)
            if let platform = output.targetPlatform {
                oneOf(platform.os, at: "outputConfig.targetPlatform.os", APIEnums.os, required: true)
                oneOf(platform.arch, at: "outputConfig.targetPlatform.arch", APIEnums.arch, required: true)
                oneOf(platform.accelerator, at: "outputConfig.targetPlatform.accelerator", APIEnums.accelerator)
            }
            string(output.compilerOptions, at: "outputConfig.compilerOptions", min: 3, max: 1024)
            string(output.kmsKeyId, at: "outputConfig.kmsKeyId", max: 2048, pattern: Pattern.kmsKeyId)
        }
        if required(request.stoppingCondition, at: "stoppingCondition"), let stopping = request.stoppingCondition {
            integer(stopping.maxRuntimeInSeconds, at: "stoppingCondition.maxRuntimeInSeconds", min: 1)
            integer(stopping.maxWaitTimeInSeconds, at: "stoppingCondition.maxWaitTimeInSeconds", min: 1)
            integer(
                stopping.maxPendingTimeInSeconds, at: "stoppingCondition.maxPendingTimeInSeconds",
                min: 7200, max: 2_419_200)
        }
        if let tags = request.tags {
            count(tags.count, at: "tags", max: 50)
            for (index, tag) in tags.enumerated() {
                string(
                    tag.key, at: "tags.\(index + 1).member.key", min: 1, max: 128, pattern: Pattern.tag,
                    required: true)
                string(
                    tag.value, at: "tags.\(index + 1).member.value", max: 256, pattern: Pattern.tag,
                    required: true)
            }
        }
        if let vpc = request.vpcConfig {
            if required(vpc.securityGroupIds, at: "vpcConfig.securityGroupIds") {
                count(vpc.securityGroupIds?.count, at: "vpcConfig.securityGroupIds", min: 1, max: 5)
                for (index, id) in (vpc.securityGroupIds ?? []).enumerated() {
                    string(id, at: "vpcConfig.securityGroupIds.\(index + 1).member", max: 32, pattern: Pattern.vpcId)
                }
            }
            if required(vpc.subnets, at: "vpcConfig.subnets") {
                count(vpc.subnets?.count, at: "vpcConfig.subnets", min: 1, max: 16)
                for (index, id) in (vpc.subnets ?? []).enumerated() {
                    string(id, at: "vpcConfig.subnets.\(index + 1).member", max: 32, pattern: Pattern.vpcId)
                }
            }
        }
    }

    mutating func list(_ request: ListCompilationJobsRequest) {
        string(request.nextToken, at: "nextToken", max: 8192)
        integer(request.maxResults, at: "maxResults", min: 1, max: 100)
        string(request.nameContains, at: "nameContains", max: 63, pattern: Pattern.nameContains)
        oneOf(request.statusEquals, at: "statusEquals", APIEnums.status)
        oneOf(request.sortBy, at: "sortBy", APIEnums.sortBy)
        oneOf(request.sortOrder, at: "sortOrder", APIEnums.sortOrder)
    }
}
