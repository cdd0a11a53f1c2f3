import AWSSigning
import Crypto
import Diagnostics
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// What S3 (or the way to it) said no with.
public struct S3Failure: Error, Sendable, Equatable, CustomStringConvertible {
    /// S3's error code (`NoSuchKey`, `AccessDenied`, …), or `RequestTimeout`/`NetworkError` for transport failures.
    public var code: String
    public var message: String
    /// The HTTP status, 0 when no response came.
    public var status: Int

    public var description: String { message.isEmpty ? code : "\(code): \(message)" }

    /// Worth another try: the server's fault, throttling or the network.
    var isRetryable: Bool {
        status == 0 || status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout"
    }
}

/// A small S3 REST client: SigV4-signed requests over URLSession, retried with
/// backoff on 5xx, throttling and network errors. Synchronous, for pipeline
/// stages, which run on threads of their own; a cancelled task cancels its request.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    private let session: URLSession
    private let transfers = Transfers()

    public init(configuration: S3Configuration) {
        self.configuration = configuration
        let sessionConfiguration = URLSessionConfiguration.ephemeral
        sessionConfiguration.timeoutIntervalForRequest = 60
        sessionConfiguration.timeoutIntervalForResource = 24 * 3600
        sessionConfiguration.httpMaximumConnectionsPerHost = 4
        session = URLSession(configuration: sessionConfiguration, delegate: transfers, delegateQueue: nil)
    }

    deinit { session.finishTasksAndInvalidate() }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data

        func header(_ name: String) -> String? {
            headers.first(where: { $0.key.lowercased() == name })?.value
        }
    }

    /// Sends one request, signed afresh for each try. `headers` are sent unsigned (e.g. Range, If-Match). A
    /// response body larger than `maximumBody` bytes fails the request instead of filling memory.
    @discardableResult
    public func send(
        _ method: String, bucket: String, key: String = "", query: [(String, String)] = [], body: Data = Data(),
        headers: [(String, String)] = [], maximumBody: Int = 16 << 20
    ) throws(S3Failure) -> Response {
        var attempt = 1
        while true {
            do {
                return try sendOnce(
                    method, bucket: bucket, key: key, query: query, body: body, headers: headers,
                    maximumBody: maximumBody)
            } catch {
                guard error.isRetryable, attempt < configuration.maxAttempts, !Task.isCancelled else { throw error }
                // Exponential backoff with full jitter: up to 0.1, 0.2, 0.4 … seconds, at most 5.
                let ceiling = min(5.0, 0.1 * Double(1 << min(attempt - 1, 10)))
                Thread.sleep(forTimeInterval: Double.random(in: ceiling / 2...ceiling))
                attempt += 1
            }
        }
    }

    private func sendOnce(
        _ method: String, bucket: String, key: String, query: [(String, String)], body: Data,
        headers extra: [(String, String)], maximumBody: Int
    ) throws(S3Failure) -> Response {
        guard let credentials = configuration.credentials else {
            throw S3Failure(
                code: "NoCredentials",
                message:
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials",
                status: -1)
        }
        let (url, headers) = signedRequest(
            method, bucket: bucket, key: key, query: query, payloadHash: SigV4.sha256Hex(body),
            credentials: credentials,
            now: Date())
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers + extra { request.setValue(value, forHTTPHeaderField: name) }
        if !body.isEmpty || method == "PUT" || method == "POST" {
            request.setValue(String(body.count), forHTTPHeaderField: "Content-Length")
        }

        let response = try perform(request, body: body, maximumBody: maximumBody)
        if (200..<300).contains(response.status), !Self.isEmbeddedError(response, method: method) {
            return response
        }
        throw Self.failure(from: response, method: method)
    }

    /// The URL of a request and the headers that sign it (all but Host, which the URL gives).
    func signedRequest(
        _ method: String, bucket: String, key: String, query: [(String, String)], payloadHash: String,
        credentials: S3Configuration.Credentials, now: Date
    ) -> (URL, [(String, String)]) {
        let (url, canonicalPath) = configuration.url(bucket: bucket, key: key, query: query)
        let amzDate = SigV4.formatAmzDate(now)
        let day = String(amzDate.prefix(8))
        var host = url.host ?? ""
        if let port = url.port, !(url.scheme == "http" && port == 80), !(url.scheme == "https" && port == 443) {
            host += ":\(port)"
        }
        var signed: [(String, String)] = [
            ("host", host), ("x-amz-content-sha256", payloadHash), ("x-amz-date", amzDate),
        ]
        if let token = credentials.sessionToken { signed.append(("x-amz-security-token", token)) }
        signed.sort { $0.0 < $1.0 }
        let signedNames = signed.map(\.0).joined(separator: ";")
        let canonicalRequest = [
            method, canonicalPath, SigV4.canonicalQuery(query),
            signed.map { "\($0.0):\(SigV4.trimmed($0.1))\n" }.joined(), signedNames, payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(configuration.region)/s3/aws4_request"
        let signingKey = SigV4.signingKey(
            secret: credentials.secretAccessKey, day: day, region: configuration.region, service: "s3")
        let signature = SigV4.signature(
            canonicalRequest: canonicalRequest, amzDate: amzDate, scope: scope, key: signingKey)
        var headers = signed.filter { $0.0 != "host" }
        headers.append(
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedNames), Signature=\(signature)"
            ))
        return (url, headers)
    }

    /// Runs a task to its end, waking every 0.2 s to cancel it if the calling task was cancelled.
    private func perform(_ request: URLRequest, body: Data, maximumBody: Int) throws(S3Failure) -> Response {
        let transfer = Transfer(maximumBody: maximumBody)
        let task =
            request.httpMethod == "PUT" || request.httpMethod == "POST"
            ? session.uploadTask(with: request, from: body) : session.dataTask(with: request)
        transfers.add(transfer, for: task)
        task.resume()
        while transfer.done.wait(timeout: .now() + 0.2) == .timedOut {
            if Task.isCancelled { task.cancel() }
        }
        if Task.isCancelled {
            throw S3Failure(code: "Cancelled", message: "the request was cancelled", status: 0)
        }
        if transfer.tooLarge {
            throw S3Failure(
                code: "ResponseTooLarge", message: "the response body passed \(maximumBody) bytes", status: -1)
        }
        if let error = transfer.error {
            let code = (error as? URLError)?.code == .timedOut ? "RequestTimeout" : "NetworkError"
            throw S3Failure(
                code: code,
                message: "cannot reach \(configuration.endpoint.absoluteString): \(error.localizedDescription)",
                status: 0)
        }
        guard let http = transfer.response else {
            throw S3Failure(code: "NetworkError", message: "no HTTP response", status: 0)
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name] = value }
        }
        return Response(status: http.statusCode, headers: headers, body: transfer.data)
    }

    /// CompleteMultipartUpload can answer 200 with an error document.
    static func isEmbeddedError(_ response: Response, method: String) -> Bool {
        method == "POST" && xmlValue("Code", in: response.body) != nil
            && String(decoding: response.body.prefix(256), as: UTF8.self).contains("<Error>")
    }

    static func failure(from response: Response, method: String) -> S3Failure {
        if let code = xmlValue("Code", in: response.body) {
            return S3Failure(code: code, message: xmlValue("Message", in: response.body) ?? "", status: response.status)
        }
        // HEAD and some proxies answer with no body: name the error by its status, as the SDKs do.
        let byStatus: [Int: (String, String)] = [
            301: ("PermanentRedirect", "the bucket is in another region or needs another endpoint"),
            400: ("BadRequest", "Bad Request"), 403: ("AccessDenied", "Forbidden"), 404: ("NotFound", "Not Found"),
            500: ("InternalError", "Internal Server Error"), 503: ("ServiceUnavailable", "Service Unavailable"),
        ]
        let (code, message) = byStatus[response.status] ?? ("HTTP\(response.status)", "unexpected HTTP status")
        return S3Failure(code: code, message: message, status: response.status)
    }

    /// The text of the first `<name>` element in an XML document (S3's documents are flat enough for this).
    static func xmlValue(_ name: String, in body: Data) -> String? {
        let text = String(decoding: body, as: UTF8.self)
        guard let open = text.range(of: "<\(name)>"),
            let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
        else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// One request's state, filled in by the session's delegate and read by the waiting thread after `done`.
private final class Transfer: @unchecked Sendable {
    let maximumBody: Int
    let done = DispatchSemaphore(value: 0)
    var response: HTTPURLResponse?
    var error: Error?
    var data = Data()
    var tooLarge = false

    init(maximumBody: Int) { self.maximumBody = maximumBody }
}

/// The session's delegate: routes each task's events to its Transfer, and cancels a task whose body grows past
/// its limit (a server ignoring a Range request must not fill memory).
private final class Transfers: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private var byTask: [Int: Transfer] = [:]

    func add(_ transfer: Transfer, for task: URLSessionTask) {
        lock.withLock { byTask[task.taskIdentifier] = transfer }
    }

    private func transfer(_ task: URLSessionTask) -> Transfer? { lock.withLock { byTask[task.taskIdentifier] } }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        transfer(dataTask)?.response = response as? HTTPURLResponse
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard let transfer = transfer(dataTask), !transfer.tooLarge else { return }
        if transfer.data.count + data.count > transfer.maximumBody {
            transfer.tooLarge = true
            transfer.data = Data()
            dataTask.cancel()
        } else {
            transfer.data.append(data)
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        guard let transfer = lock.withLock({ byTask.removeValue(forKey: task.taskIdentifier) }) else { return }
        transfer.error = error
        transfer.done.signal()
    }
}
