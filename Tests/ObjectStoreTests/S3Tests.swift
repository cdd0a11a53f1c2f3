import AWSSigning
import Crypto
import Diagnostics
import Foundation
import TestSupport
import Testing

@testable import ObjectStore

/// The environment of a process that has only what a test gives it.
private func environment(_ values: [String: String]) -> [String: String] {
    ["HOME": "/nonexistent-home"].merging(values) { $1 }
}

@Suite("S3 configuration, the standard AWS way")
struct S3ConfigurationTests {
    @Test("no endpoint and no credentials: the local store; KILN_OBJECT_STORE overrides either way")
    func fallback() throws {
        let home = KilnHome(path: "/tmp/kiln-home")
        guard case .local(let local) = try ObjectStoreChoice.fromEnvironment(home: home, environment([:])) else {
            Issue.record("expected the local store")
            return
        }
        #expect(local.root == "/tmp/kiln-home/objects")
        let configured = environment(["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"])
        guard case .s3(let client) = try ObjectStoreChoice.fromEnvironment(home: home, configured) else {
            Issue.record("credentials alone should select S3")
            return
        }
        #expect(client.configuration.endpoint.absoluteString == "https://s3.us-east-1.amazonaws.com")
        #expect(client.configuration.addressingStyle == .virtual)
        var forced = configured
        forced["KILN_OBJECT_STORE"] = "local"
        guard case .local = try ObjectStoreChoice.fromEnvironment(home: home, forced) else {
            Issue.record("KILN_OBJECT_STORE=local should win")
            return
        }
        let error = #expect(throws: KilnError.self) {
            try ObjectStoreChoice.fromEnvironment(home: home, environment(["KILN_OBJECT_STORE": "s3"]))
        }
        #expect(error?.message.contains("no S3 endpoint or credentials are configured") == true)
    }

    @Test("profiles from the shared files; environment variables win; nested s3 settings are read")
    func sharedFiles() throws {
        let directory = try TemporaryDirectory()
        let credentials = try directory.write(
            "credentials",
            Array(
                """
                [default]
                aws_access_key_id = AKIDDEFAULT
                aws_secret_access_key = default-secret

                [build]
                aws_access_key_id = AKIDBUILD
                aws_secret_access_key = build-secret
                """.utf8))
        let config = try directory.write(
            "config",
            Array(
                """
                [profile build]
                region = eu-central-1
                endpoint_url = http://127.0.0.1:9000
                s3 =
                  addressing_style = virtual
                  multipart_chunksize = 16MB
                """.utf8))
        let files = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config]
        let build = try #require(
            try S3Configuration.fromEnvironment(environment(files.merging(["AWS_PROFILE": "build"]) { $1 })))
        #expect(build.credentials?.accessKeyID == "AKIDBUILD")
        #expect(build.credentials?.source == "\(credentials) [build]")
        #expect(build.region == "eu-central-1")
        #expect(build.endpoint.absoluteString == "http://127.0.0.1:9000")
        #expect(build.addressingStyle == .virtual)
        #expect(build.partSize == 16 << 20)
        let overridden = try #require(
            try S3Configuration.fromEnvironment(
                environment(
                    files.merging([
                        "AWS_PROFILE": "build", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "env",
                        "AWS_ENDPOINT_URL_S3": "http://localhost:5000", "AWS_REGION": "ap-south-1",
                    ]) { $1 })))
        #expect(overridden.credentials?.accessKeyID == "AKIDENV" && overridden.credentials?.source == "environment")
        #expect(overridden.endpoint.absoluteString == "http://localhost:5000")
        #expect(overridden.region == "ap-south-1")
        let plain = try #require(try S3Configuration.fromEnvironment(environment(files)))
        #expect(plain.credentials?.accessKeyID == "AKIDDEFAULT" && plain.region == "us-east-1")
        #expect(throws: KilnError.self) {
            try S3Configuration.fromEnvironment(environment(["AWS_ENDPOINT_URL": "ftp://example.com"]))
        }
    }

    @Test("https S3 URLs in every style name their bucket and key; others are not S3 URLs")
    func httpsURLs() throws {
        let aws = try #require(
            try S3Configuration.fromEnvironment(
                environment(["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-west-2"])))
        let cases: [(String, String, String)] = [
            ("https://models.s3.amazonaws.com/zoo/resnet.tar.gz", "models", "zoo/resnet.tar.gz"),
            ("https://models.s3.us-west-2.amazonaws.com/zoo/resnet.tar.gz", "models", "zoo/resnet.tar.gz"),
            ("https://s3.us-west-2.amazonaws.com/models/zoo/resnet.tar.gz", "models", "zoo/resnet.tar.gz"),
            ("https://s3.amazonaws.com/models/a%20b.tar.gz", "models", "a b.tar.gz"),
        ]
        for (url, bucket, key) in cases {
            let parsed = aws.bucketAndKey(https: url)
            #expect(parsed?.bucket == bucket && parsed?.key == key, "\(url)")
        }
        #expect(aws.bucketAndKey(https: "https://example.com/models/m.tar.gz") == nil)
        let custom = try #require(
            try S3Configuration.fromEnvironment(environment(["AWS_ENDPOINT_URL": "https://minio.internal:9000"])))
        #expect(custom.bucketAndKey(https: "https://minio.internal:9000/models/m.tar.gz")?.bucket == "models")
    }

    @Test("object URLs: path style keeps the bucket in the path, virtual style in the host; keys are encoded once")
    func objectURLs() throws {
        var configuration = try #require(
            try S3Configuration.fromEnvironment(environment(["AWS_ENDPOINT_URL": "http://127.0.0.1:9000"])))
        let (pathURL, pathCanonical) = configuration.url(bucket: "b", key: "dir/a b+c.tar.gz", query: [])
        #expect(pathURL.absoluteString == "http://127.0.0.1:9000/b/dir/a%20b%2Bc.tar.gz")
        #expect(pathCanonical == "/b/dir/a%20b%2Bc.tar.gz")
        configuration.addressingStyle = .virtual
        let (virtualURL, _) = configuration.url(
            bucket: "b", key: "k", query: [("partNumber", "1"), ("uploadId", "x/y")])
        #expect(virtualURL.absoluteString == "http://b.127.0.0.1:9000/k?partNumber=1&uploadId=x%2Fy")
    }
}

/// A client for the moto server `scripts/with-services` starts, with its keys (or the ones given).
private func motoClient(accessKey: String? = nil, secretKey: String? = nil, extra: [String: String] = [:]) throws
    -> S3Client
{
    let service = try #require(TestServices.s3, "moto's S3 server is not running (run the tests through scripts/test)")
    let configuration = try #require(
        try S3Configuration.fromEnvironment(
            environment(
                [
                    "AWS_ENDPOINT_URL": service.endpoint, "AWS_ACCESS_KEY_ID": accessKey ?? service.accessKey,
                    "AWS_SECRET_ACCESS_KEY": secretKey ?? service.secretKey, "AWS_REGION": "us-east-1",
                    // moto's in-memory server, shared by suites running at once, now and then answers a request
                    // with a 500 (a CI run saw four in a row): more tries than a real client's default.
                    "AWS_MAX_ATTEMPTS": "8",
                ].merging(extra) { $1 })))
    return S3Client(configuration: configuration)
}

private func newBucket(_ client: S3Client) throws -> String {
    let bucket = "kiln-" + UUID().uuidString.lowercased().prefix(18)
    try client.createBucket(bucket)
    return bucket
}

/// The `kiln` executable built beside the test bundle.
private var kilnExecutable: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kiln").path
}

/// Runs a program to its end; returns its exit status and its own peak RSS in KiB. A small Python parent
/// starts it and reads wait4's figure: a child spawned from this large test process would carry this
/// process's pages in its count.
private func runMeasured(_ path: String, _ arguments: [String], environment: [String: String]) throws -> (Int32, Int) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
        [
            "python3", "-c",
            "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, "
                + "stderr=subprocess.DEVNULL); _, status, usage = os.wait4(p.pid, 0); "
                + "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)",
            path,
        ] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    let fields = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    let status = try #require(fields.first.flatMap { Int32($0) }, "no status from the measuring wrapper: \(text)")
    let peak = try #require(fields.last.flatMap { Int($0) }, "no peak RSS from the measuring wrapper: \(text)")
    return (status, peak)
}

private func sha256(_ path: String) throws -> String {
    let handle = try #require(FileHandle(forReadingAtPath: path))
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

@Suite(
    "S3 against moto's server", .serialized,
    .enabled(if: TestServices.s3 != nil || TestServices.required, "needs moto_server (scripts/test starts it)"))
struct S3ServerTests {
    @Test(
        "a 300 MB artifact goes up in 8 MB parts and comes back byte for byte; a kiln process fetching it stays small")
    func multipartRoundTrip() async throws {
        try await onOwnThread {
            let client = try motoClient()
            let bucket = try newBucket(client)
            let directory = try TemporaryDirectory()
            let source = directory.path + "/big.bin"
            // 300 MB of a repeating pseudo-random block: cheap to make, and a misplaced part changes the digest.
            var generator = SeededGenerator(state: 42)
            let block = Data((0..<(1 << 20) + 7).map { _ in UInt8.random(in: 0...255, using: &generator) })
            _ = FileManager.default.createFile(atPath: source, contents: nil)
            let writer = try #require(FileHandle(forWritingAtPath: source))
            var written = 0
            while written < 300 << 20 {
                let chunk = block.prefix((300 << 20) - written)
                writer.write(chunk)
                written += chunk.count
            }
            try writer.close()
            try client.upload(file: source, bucket: bucket, key: "artifacts/big.bin")
            let head = try client.send("HEAD", bucket: bucket, key: "artifacts/big.bin")
            #expect(head.header("content-length") == String(300 << 20))
            // A multipart object's ETag ends in -<parts>.
            #expect(head.header("etag")?.hasSuffix("-38\"") == true, "\(head.header("etag") ?? "no ETag")")
            let copy = directory.path + "/copy.bin"
            try client.download(bucket: bucket, key: "artifacts/big.bin", to: copy)
            #expect(try sha256(copy) == (try sha256(source)))
            #expect(!FileManager.default.fileExists(atPath: copy + ".partial"))
            // The download streams to disk: `kiln inspect` fetches all 300 MB (then refuses the bytes as a model)
            // with a peak RSS far below the object's size. Measured on its own process, not this busy one.
            let service = try #require(TestServices.s3)
            let (status, peakKiB) = try runMeasured(
                kilnExecutable, ["inspect", "s3://\(bucket)/artifacts/big.bin", "--framework", "ONNX"],
                environment: [
                    "AWS_ENDPOINT_URL": service.endpoint, "AWS_ACCESS_KEY_ID": service.accessKey,
                    "AWS_SECRET_ACCESS_KEY": service.secretKey, "AWS_REGION": "us-east-1",
                    "KILN_HOME": directory.path + "/home", "KILN_NO_AUTOSTART": "1", "AWS_MAX_ATTEMPTS": "8",
                ])
            #expect(status == 1)
            #expect(peakKiB < 100 * 1024, "kiln inspect peaked at \(peakKiB / 1024) MiB fetching 300 MB")
        }
    }

    @Test("missing buckets and keys, a wrong secret and an unknown key each fail with their own reason")
    func reasons() async throws {
        try await onOwnThread {
            let client = try motoClient()
            let bucket = try newBucket(client)
            let service = try #require(TestServices.s3)
            let directory = try TemporaryDirectory()
            func reason(_ client: S3Client, _ uri: ObjectURI) -> String {
                do {
                    _ = try ObjectFetcher(store: .s3(client)).localPath(
                        for: uri, downloadDirectory: directory.path + "/f")
                    return "no error"
                } catch let error as KilnError {
                    return error.failureReason
                } catch {
                    return "\(error)"
                }
            }
            #expect(
                reason(client, .s3(bucket: "no-such-bucket-kiln", key: "m.tar.gz"))
                    == "ClientError: InputConfiguration: cannot read s3://no-such-bucket-kiln/m.tar.gz: NoSuchBucket: the bucket does not exist"
            )
            #expect(
                reason(client, .s3(bucket: bucket, key: "missing.tar.gz"))
                    == "ClientError: InputConfiguration: cannot read s3://\(bucket)/missing.tar.gz: NoSuchKey: the object does not exist"
            )
            let wrongSecret = try motoClient(secretKey: "not-the-secret")
            #expect(
                reason(wrongSecret, .s3(bucket: bucket, key: "m.tar.gz")).hasPrefix(
                    "ClientError: InputConfiguration: cannot read s3://\(bucket)/m.tar.gz: SignatureDoesNotMatch: "))
            let unknownKey = try motoClient(accessKey: "AKIAKILNUNKNOWN00000")
            #expect(
                reason(unknownKey, .s3(bucket: bucket, key: "m.tar.gz")).hasPrefix(
                    "ClientError: InputConfiguration: cannot read s3://\(bucket)/m.tar.gz: InvalidAccessKeyId: "))
            // Nothing half-downloaded is left behind.
            #expect(directory.listing().allSatisfy { !$0.hasSuffix(".partial") })
            _ = service
        }
    }

    @Test("an https URL on the endpoint reads the same object as its s3:// URI")
    func httpsOnEndpoint() async throws {
        try await onOwnThread {
            let client = try motoClient()
            let bucket = try newBucket(client)
            let directory = try TemporaryDirectory()
            let source = try directory.write("m.bin", Array("by https".utf8))
            try client.upload(file: source, bucket: bucket, key: "models/m.tar.gz")
            let url = client.configuration.endpoint.absoluteString + "/\(bucket)/models/m.tar.gz"
            let path = try ObjectFetcher(store: .s3(client)).localPath(
                for: .https(url), downloadDirectory: directory.path + "/fetched")
            #expect(path == directory.path + "/fetched/m.tar.gz")
            #expect(try String(contentsOfFile: path, encoding: .utf8) == "by https")
        }
    }
}

@Suite("S3 signatures")
struct S3SignatureTests {
    @Test(
        "requests are signed exactly as botocore signs them, awkward keys and multipart queries included",
        arguments: [
            ("GET", "models/plain.tar.gz", [(String, String)]()),
            ("PUT", "dir/with space/m+1.tar.gz", []),
            ("GET", "zoo/ümlaut-模型.tar.gz", []),
            ("DELETE", "a=b&c/d~e", [("uploadId", "2~x/y+z=")]),
            ("POST", "big/artifact.tar.gz", [("uploads", "")]),
            ("PUT", "big/artifact.tar.gz", [("partNumber", "12"), ("uploadId", "abc")]),
        ])
    func matchesBotocore(method: String, key: String, query: [(String, String)]) throws {
        for style in ["path", "virtual"] {
            let configuration = try #require(
                try S3Configuration.fromEnvironment(
                    environment([
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
                        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_REGION": "eu-west-3",
                        "KILN_S3_ADDRESSING_STYLE": style,
                    ])))
            let client = S3Client(configuration: configuration)
            let payload = SigV4.sha256Hex(Array("body".utf8))
            let now = Date(timeIntervalSince1970: 1_795_000_000)
            let (url, headers) = client.signedRequest(
                method, bucket: "kiln-models", key: key, query: query, payloadHash: payload,
                credentials: try #require(configuration.credentials), now: now)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [
                "python3", repositoryRoot + "/Tests/ObjectStoreTests/Scripts/botocore_sign.py", method,
                url.absoluteString, "eu-west-3", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                SigV4.formatAmzDate(now), "body",
            ]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let expected = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            process.waitUntilExit()
            let authorization = headers.first { $0.0 == "Authorization" }?.1
            #expect(authorization == expected, "\(style) \(url)")
        }
    }
}

@Suite("S3 retries", .serialized)
struct S3RetryTests {
    /// Starts the flaky server; returns it and its endpoint.
    private func flakyServer(failures: Int, status: Int) throws -> (Process, Pipe, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot + "/Tests/ObjectStoreTests/Scripts/flaky_s3.py", "\(failures)", "\(status)",
        ]
        process.standardError = FileHandle.nullDevice
        let (line, out) = try startReadingFirstLine(process)
        let port = line.trimmingCharacters(in: .whitespacesAndNewlines)
        return (process, out, "http://127.0.0.1:\(port)")
    }

    private func client(_ endpoint: String, attempts: Int) throws -> S3Client {
        S3Client(
            configuration: try #require(
                try S3Configuration.fromEnvironment(
                    environment([
                        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_MAX_ATTEMPTS": "\(attempts)",
                    ]))))
    }

    @Test("503s and dropped connections are retried with backoff until an answer comes", arguments: [503, 0])
    func retriesThenSucceeds(status: Int) async throws {
        try await onOwnThread {
            let (server, _, endpoint) = try flakyServer(failures: 2, status: status)
            defer { server.terminate() }
            let directory = try TemporaryDirectory()
            try client(endpoint, attempts: 3).download(bucket: "b", key: "k", to: directory.path + "/k")
            #expect(try String(contentsOfFile: directory.path + "/k", encoding: .utf8) == "payload")
        }
    }

    @Test("when the tries run out, the job's reason names the last error")
    func givesUp() async throws {
        try await onOwnThread {
            let (server, _, endpoint) = try flakyServer(failures: 5, status: 503)
            defer { server.terminate() }
            let directory = try TemporaryDirectory()
            let fetcher = ObjectFetcher(store: .s3(try client(endpoint, attempts: 2)))
            let error = #expect(throws: KilnError.self) {
                try fetcher.localPath(for: .s3(bucket: "b", key: "k"), downloadDirectory: directory.path)
            }
            #expect(
                error?.failureReason
                    == "ServerError: Internal: cannot read s3://b/k: ServiceUnavailable: Please reduce your request rate."
            )
            #expect(directory.listing().isEmpty)
        }
    }
}
