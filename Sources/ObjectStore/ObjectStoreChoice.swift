import Diagnostics
import Foundation

/// Where `s3://` URIs are read from and written to: a real S3-compatible
/// endpoint when the environment configures one (an endpoint or credentials,
/// the standard AWS way), else Kiln's local directory store.
/// `KILN_OBJECT_STORE=local` or `=s3` overrides the choice.
public enum ObjectStoreChoice: Sendable {
    case local(LocalObjectStore)
    case s3(S3Client)

    public static func fromEnvironment(
        home: KilnHome, _ variables: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ObjectStoreChoice {
        let forced = variables["KILN_OBJECT_STORE"].flatMap { $0.isEmpty ? nil : $0 }
        switch forced {
        case "local":
            return .local(LocalObjectStore(home: home))
        case nil, "s3":
            if let configuration = try S3Configuration.fromEnvironment(variables) {
                return .s3(S3Client(configuration: configuration))
            }
            if forced == "s3" {
                throw KilnError.client(
                    .inputConfiguration,
                    "KILN_OBJECT_STORE=s3 but no S3 endpoint or credentials are configured (AWS_ENDPOINT_URL, "
                        + "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile in ~/.aws)")
            }
            return .local(LocalObjectStore(home: home))
        case let other?:
            throw KilnError.client(
                .inputConfiguration, "KILN_OBJECT_STORE=\(quoted(other)) is not one of local, s3")
        }
    }

    /// One line per setting, for `kiln config`.
    public var settings: [(String, String)] {
        switch self {
        case .local(let store):
            return [("object store", "local directory \(store.root) (no S3 endpoint or credentials configured)")]
        case .s3(let client):
            let configuration = client.configuration
            return [
                ("object store", "S3 at \(configuration.endpoint.absoluteString)"),
                ("s3 region", configuration.region),
                ("s3 profile", configuration.profile),
                (
                    "s3 credentials",
                    configuration.credentials.map { "\($0.accessKeyID.prefix(4))… from \($0.source)" } ?? "none"
                ),
                ("s3 addressing style", configuration.addressingStyle.rawValue),
                ("s3 max attempts", String(configuration.maxAttempts)),
                (
                    "s3 multipart",
                    "objects from \(configuration.multipartThreshold >> 20) MiB in parts of \(configuration.partSize >> 20) MiB"
                ),
            ]
        }
    }
}

extension S3Client {
    /// Downloads `s3://bucket/key` into `path` in ranged GETs of one part each (as the AWS CLI does), so memory
    /// holds one part whatever the object's size; later parts must match the first one's ETag. Nothing is left
    /// at `path` on failure.
    public func download(bucket: String, key: String, to path: String) throws(S3Failure) {
        let partial = path + ".partial"
        do {
            try fetchRanges(bucket: bucket, key: key, to: partial)
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        guard (try? FileManager.default.moveItem(atPath: partial, toPath: path)) != nil else {
            try? FileManager.default.removeItem(atPath: partial)
            throw S3Failure(code: "LocalWrite", message: "cannot move the download to \(path)", status: -1)
        }
    }

    private func fetchRanges(bucket: String, key: String, to path: String) throws(S3Failure) {
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let file = FileHandle(forWritingAtPath: path)
        else {
            throw S3Failure(code: "LocalWrite", message: "cannot create \(path)", status: -1)
        }
        defer { try? file.close() }
        let part = configuration.partSize
        var offset = 0
        var total: Int?
        var etag: String?
        repeat {
            var headers = [("Range", "bytes=\(offset)-\(offset + part - 1)")]
            if let etag { headers.append(("If-Match", etag)) }
            let response: Response
            do {
                response = try send("GET", bucket: bucket, key: key, headers: headers, maximumBody: part + (1 << 20))
            } catch  where error.code == "InvalidRange" && offset == 0 {
                // An empty object has no byte 0 to ask for.
                response = try send("GET", bucket: bucket, key: key, maximumBody: part)
            }
            etag = etag ?? response.header("etag")
            do {
                try file.write(contentsOf: response.body)
            } catch {
                throw S3Failure(code: "LocalWrite", message: "cannot write \(path): \(error)", status: -1)
            }
            offset += response.body.count
            if response.status == 200 {
                // The whole object in one answer (it is empty, or the server does not do ranges).
                return
            }
            // Content-Range: bytes first-last/total
            guard let range = response.header("content-range"), let slash = range.lastIndex(of: "/"),
                let size = Int(range[range.index(after: slash)...])
            else {
                throw S3Failure(
                    code: "BadResponse", message: "a ranged GET answered without Content-Range", status: 206)
            }
            total = size
            if response.body.isEmpty && offset < size {
                throw S3Failure(
                    code: "BadResponse", message: "a ranged GET returned no bytes at \(offset)", status: 206)
            }
        } while offset < (total ?? 0)
    }

    /// Uploads a file to `s3://bucket/key`: one PUT below the multipart threshold, else a multipart upload
    /// (aborted on failure, so no part of it stays behind). Memory use is one part.
    public func upload(file path: String, bucket: String, key: String) throws(S3Failure) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw S3Failure(code: "LocalRead", message: "cannot read \(path)", status: -1)
        }
        defer { try? handle.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        func read(_ count: Int) throws(S3Failure) -> Data {
            do {
                return try handle.read(upToCount: count) ?? Data()
            } catch {
                throw S3Failure(code: "LocalRead", message: "cannot read \(path): \(error)", status: -1)
            }
        }
        if size < configuration.multipartThreshold {
            try send("PUT", bucket: bucket, key: key, body: try read(max(size, 1)))
            return
        }
        let created = try send("POST", bucket: bucket, key: key, query: [("uploads", "")])
        guard let uploadID = Self.xmlValue("UploadId", in: created.body) else {
            throw S3Failure(code: "BadResponse", message: "CreateMultipartUpload returned no UploadId", status: 200)
        }
        do throws(S3Failure) {
            var parts: [(Int, String)] = []
            var number = 1
            while true {
                let chunk = try read(configuration.partSize)
                if chunk.isEmpty { break }
                let response = try send(
                    "PUT", bucket: bucket, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                    body: chunk)
                guard let etag = response.header("etag") else {
                    throw S3Failure(code: "BadResponse", message: "UploadPart \(number) returned no ETag", status: 200)
                }
                parts.append((number, etag))
                number += 1
            }
            let document =
                "<CompleteMultipartUpload>"
                + parts.map { "<Part><PartNumber>\($0.0)</PartNumber><ETag>\(Self.xmlEscaped($0.1))</ETag></Part>" }
                .joined() + "</CompleteMultipartUpload>"
            try send("POST", bucket: bucket, key: key, query: [("uploadId", uploadID)], body: Data(document.utf8))
        } catch {
            _ = try? send("DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)])
            throw error
        }
    }

    /// Creates a bucket (in the configured region).
    public func createBucket(_ bucket: String) throws(S3Failure) {
        var body = Data()
        if configuration.region != "us-east-1" {
            body = Data(
                "<CreateBucketConfiguration><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>"
                    .utf8)
        }
        try send("PUT", bucket: bucket, body: body)
    }

    static func xmlEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The one-line reason a job fails with when `uri` cannot be read or written.
    public static func reason(_ failure: S3Failure, uri: String, writing: Bool) -> KilnError {
        let kind: KilnError.Category = writing ? .outputConfiguration : .inputConfiguration
        let what = writing ? "cannot write the artifact to \(uri)" : "cannot read \(uri)"
        switch failure.code {
        case "NoSuchBucket":
            return .client(kind, "\(what): NoSuchBucket: the bucket does not exist")
        case "NoSuchKey", "NotFound":
            return .client(kind, "\(what): NoSuchKey: the object does not exist")
        case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
            "NoCredentials":
            return .client(
                kind, "\(what): \(failure.code): \(failure.message.isEmpty ? "access denied" : failure.message)")
        default:
            if failure.status >= 400 && failure.status < 500 {
                return .client(kind, "\(what): \(failure)")
            }
            return .server(.internal, "\(what): \(failure)")
        }
    }
}
