import AWSSigning
import Diagnostics
import Foundation

/// How to reach S3, read the standard AWS way: environment variables first,
/// then the shared config and credentials files for the selected profile.
public struct S3Configuration: Sendable, Equatable {
    public enum AddressingStyle: String, Sendable {
        /// `https://bucket.host/key`.
        case virtual
        /// `https://host/bucket/key`.
        case path
    }

    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?
        /// Where they came from, for `kiln config`: "environment" or "<file> [profile]".
        public var source: String
    }

    /// The endpoint's scheme, host and port, e.g. `http://127.0.0.1:5000`; AWS's regional endpoint when none is set.
    public var endpoint: URL
    /// Whether the endpoint is a custom one (AWS_ENDPOINT_URL…) rather than AWS's.
    public var customEndpoint: Bool
    public var region: String
    public var profile: String
    public var credentials: Credentials?
    public var addressingStyle: AddressingStyle
    /// Tries per request (the first and the retries), AWS_MAX_ATTEMPTS.
    public var maxAttempts: Int
    /// Objects at least this large are uploaded in parts of `partSize` bytes.
    public var multipartThreshold: Int
    public var partSize: Int

    /// The configuration the environment describes, or nil when it names neither an endpoint nor credentials
    /// (then Kiln keeps objects in its local store).
    public static func fromEnvironment(_ variables: [String: String] = ProcessInfo.processInfo.environment) throws
        -> S3Configuration?
    {
        func variable(_ name: String) -> String? {
            guard let value = variables[name], !value.isEmpty else { return nil }
            return value
        }
        let home = variable("HOME") ?? "/root"
        let profile = variable("AWS_PROFILE") ?? variable("AWS_DEFAULT_PROFILE") ?? "default"
        let configPath = variable("AWS_CONFIG_FILE") ?? home + "/.aws/config"
        let credentialsPath = variable("AWS_SHARED_CREDENTIALS_FILE") ?? home + "/.aws/credentials"
        let config = try readINI(configPath)?.section(profile == "default" ? "default" : "profile " + profile) ?? [:]
        let credentialsFile = try readINI(credentialsPath)?.section(profile) ?? [:]

        var credentials: Credentials?
        if let key = variable("AWS_ACCESS_KEY_ID"), let secret = variable("AWS_SECRET_ACCESS_KEY") {
            credentials = Credentials(
                accessKeyID: key, secretAccessKey: secret, sessionToken: variable("AWS_SESSION_TOKEN"),
                source: "environment")
        } else {
            for (values, path) in [(credentialsFile, credentialsPath), (config, configPath)] {
                if let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] {
                    credentials = Credentials(
                        accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"],
                        source: "\(path) [\(profile)]")
                    break
                }
            }
        }
        let endpointText =
            variable("AWS_ENDPOINT_URL_S3") ?? variable("AWS_ENDPOINT_URL") ?? config["s3.endpoint_url"]
            ?? config["endpoint_url"]
        guard credentials != nil || endpointText != nil else { return nil }

        let region = variable("AWS_REGION") ?? variable("AWS_DEFAULT_REGION") ?? config["region"] ?? "us-east-1"
        let endpoint: URL
        if let endpointText {
            guard let url = URL(string: endpointText), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw KilnError.client(
                    .inputConfiguration,
                    "the S3 endpoint \(quoted(endpointText)) is not an http:// or https:// URL")
            }
            endpoint = url
        } else {
            endpoint = URL(string: "https://s3.\(region).amazonaws.com")!
        }
        let styleText = variable("KILN_S3_ADDRESSING_STYLE") ?? config["s3.addressing_style"]
        let style: AddressingStyle
        switch styleText {
        case nil, "auto": style = endpointText == nil ? .virtual : .path
        case let text?:
            guard let parsed = AddressingStyle(rawValue: text) else {
                throw KilnError.client(
                    .inputConfiguration, "the S3 addressing style \(quoted(text)) is not one of auto, virtual, path")
            }
            style = parsed
        }
        func size(_ text: String?, _ name: String, default value: Int) throws -> Int {
            guard let text else { return value }
            guard let parsed = parseSize(text), parsed >= 5 << 20 else {
                throw KilnError.client(
                    .inputConfiguration, "\(name) \(quoted(text)) is not a size of at least 5MB (e.g. 8MB, 64MB)")
            }
            return parsed
        }
        let attempts = variable("AWS_MAX_ATTEMPTS") ?? config["max_attempts"]
        guard let maxAttempts = Int(attempts ?? "4"), maxAttempts >= 1 else {
            throw KilnError.client(
                .inputConfiguration, "AWS_MAX_ATTEMPTS \(quoted(attempts ?? "")) is not a positive whole number")
        }
        return S3Configuration(
            endpoint: endpoint, customEndpoint: endpointText != nil, region: region, profile: profile,
            credentials: credentials, addressingStyle: style, maxAttempts: maxAttempts,
            multipartThreshold: try size(config["s3.multipart_threshold"], "multipart_threshold", default: 8 << 20),
            partSize: try size(config["s3.multipart_chunksize"], "multipart_chunksize", default: 8 << 20))
    }

    static func readINI(_ path: String) throws -> AWSINI? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try AWSINI(parsing: String(decoding: data, as: UTF8.self))
        } catch {
            throw KilnError.client(.inputConfiguration, "\(path) line \(error.line): \(error.message)")
        }
    }

    /// `8MB`, `64MiB`, `1GB` or a number of bytes, as the AWS CLI's s3 settings take them.
    static func parseSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            return Int(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)).map { $0 * scale }
        }
        return Int(text)
    }

    /// The URL of an object (or of a bucket when `key` is empty) and the value of its Host header.
    func url(bucket: String, key: String, query: [(String, String)]) -> (url: URL, canonicalPath: String) {
        var components = URLComponents(url: endpoint, resolvingAgainstBaseURL: false)!
        let encodedKey = SigV4.uriEncode(key, keepSlash: true)
        let path: String
        if addressingStyle == .virtual {
            components.host = bucket + "." + (components.host ?? "")
            path = "/" + encodedKey
        } else {
            path = "/" + bucket + (key.isEmpty ? "" : "/" + encodedKey)
        }
        components.percentEncodedPath = path
        components.percentEncodedQuery =
            query.isEmpty
            ? nil
            : query.map { SigV4.uriEncode($0.0, keepSlash: false) + "=" + SigV4.uriEncode($0.1, keepSlash: false) }
                .joined(separator: "&")
        return (components.url!, path)
    }

    /// The bucket and key an https S3 URL names, in virtual-host or path style, on AWS or on the configured endpoint.
    public func bucketAndKey(https text: String) -> (bucket: String, key: String)? {
        guard let url = URLComponents(string: text), let host = url.host?.lowercased() else { return nil }
        let path = url.percentEncodedPath.removingPercentEncoding ?? url.percentEncodedPath
        let segments = path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true).map(String.init)
        let endpointHost = endpoint.host?.lowercased() ?? ""
        let awsPathStyle = host.hasPrefix("s3.") || host.hasPrefix("s3-") || host == "s3.amazonaws.com"
        if (host == endpointHost && customEndpoint) || (awsPathStyle && host.hasSuffix(".amazonaws.com")) {
            guard segments.count == 2 else { return nil }
            return (segments[0], segments[1])
        }
        for suffix in [".s3.amazonaws.com", "." + endpointHost] where host.hasSuffix(suffix) && !suffix.isEmpty {
            let bucket = String(host.dropLast(suffix.count))
            guard !bucket.isEmpty, !path.isEmpty, path != "/" else { return nil }
            return (bucket, String(path.dropFirst()))
        }
        if let range = host.range(of: ".s3."), host.hasSuffix(".amazonaws.com") {
            return (String(host[..<range.lowerBound]), String(path.dropFirst()))
        }
        return nil
    }
}
