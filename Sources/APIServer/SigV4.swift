import AWSSigning
import Crypto
import Foundation

/// Verifies AWS Signature Version 4 (the Authorization-header form) the way
/// AWS does, with AWS's error codes and messages. Signing keys are cached per
/// (key, date, region, service): a busy client costs one HMAC per request.
public final class SigV4Verifier: @unchecked Sendable {
    public struct Failure: Error, Equatable {
        public var code: String
        public var message: String
        public var status: Int
    }

    /// What the verifier needs of a request.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: String
        /// Header names in any case; repeated headers as separate entries.
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    let credentials: Credentials
    let region: String
    let service: String
    /// Requests dated further than this from now are refused.
    let allowedSkew: TimeInterval = 15 * 60
    private let lock = NSLock()
    private var signingKeys: [String: SymmetricKey] = [:]

    public init(credentials: Credentials, region: String, service: String = "sagemaker") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    static func invalidSignature(_ message: String) -> Failure {
        Failure(code: "InvalidSignatureException", message: message, status: 403)
    }

    static func incomplete(_ message: String) -> Failure {
        Failure(code: "IncompleteSignatureException", message: message, status: 400)
    }

    /// The user the request is signed by, or the reason it is not.
    public func verify(_ request: Request, now: Date = Date()) throws(Failure) -> Credentials.User {
        var byName: [String: String] = [:]
        for (name, value) in request.headers {
            let key = name.lowercased()
            byName[key] = byName[key].map { $0 + "," + value } ?? value
        }
        func header(_ name: String) -> String? { byName[name] }
        guard let authorization = header("authorization") else {
            throw Failure(
                code: "MissingAuthenticationTokenException", message: "Missing Authentication Token", status: 403)
        }
        let prefix = "AWS4-HMAC-SHA256 "
        guard authorization.hasPrefix(prefix) else {
            throw Self.incomplete(
                "Authorization header requires the AWS4-HMAC-SHA256 algorithm. Authorization=\(authorization.prefix(40))"
            )
        }
        var parts: [String: String] = [:]
        for component in authorization.dropFirst(prefix.count).split(separator: ",") {
            let pair = component.trimmingCharacters(in: .whitespaces)
            guard let equals = pair.firstIndex(of: "=") else { continue }
            parts[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        var missing: [String] = []
        for name in ["Credential", "SignedHeaders", "Signature"] where parts[name] == nil {
            missing.append("Authorization header requires '\(name)' parameter.")
        }
        let amzDate = header("x-amz-date")
        if amzDate == nil {
            missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        }
        guard missing.isEmpty, let credential = parts["Credential"], let signedList = parts["SignedHeaders"],
            let signature = parts["Signature"], let amzDate
        else {
            throw Self.incomplete(missing.joined(separator: " ") + " Authorization=\(authorization.prefix(60))")
        }
        let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request" else {
            throw Self.incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '\(credential)'"
            )
        }
        let (accessKey, day, scopeRegion, scopeService) = (scope[0], scope[1], scope[2], scope[3])
        guard let user = credentials.user(accessKeyID: accessKey) else {
            throw Failure(
                code: "UnrecognizedClientException", message: "The security token included in the request is invalid.",
                status: 403)
        }
        guard let date = SigV4.parseAmzDate(amzDate) else {
            throw Self.incomplete(
                "Date must be in ISO-8601 'basic format'. Got '\(amzDate)'. See http://en.wikipedia.org/wiki/ISO_8601")
        }
        guard amzDate.hasPrefix(day) else {
            throw Self.invalidSignature(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '\(day)' != '\(amzDate.prefix(8))', from '\(amzDate)'."
            )
        }
        guard scopeRegion == region else {
            throw Self.invalidSignature(
                "Credential should be scoped to a valid region, not '\(scopeRegion)'. This endpoint serves '\(region)'."
            )
        }
        guard scopeService == service else {
            throw Self.invalidSignature("Credential should be scoped to correct service: '\(service)'.")
        }
        if date < now.addingTimeInterval(-allowedSkew) {
            throw Self.invalidSignature(
                "Signature expired: \(amzDate) is now earlier than \(SigV4.formatAmzDate(now.addingTimeInterval(-allowedSkew))) (\(SigV4.formatAmzDate(now)) - 15 min.)"
            )
        }
        if date > now.addingTimeInterval(allowedSkew) {
            throw Self.invalidSignature(
                "Signature not yet current: \(amzDate) is still later than \(SigV4.formatAmzDate(now.addingTimeInterval(allowedSkew))) (\(SigV4.formatAmzDate(now)) + 15 min.)"
            )
        }
        let signedHeaders = signedList.split(separator: ";").map(String.init)
        guard signedHeaders.contains("host"), signedHeaders == signedHeaders.sorted(),
            signedHeaders.allSatisfy({ $0 == $0.lowercased() })
        else {
            throw Self.invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
        }
        var canonicalHeaders = ""
        for name in signedHeaders {
            guard let value = header(name) else {
                throw Self.invalidSignature(
                    "The request signature we calculated does not match the signature you provided. Signed header '\(name)' is missing."
                )
            }
            canonicalHeaders += name + ":" + SigV4.trimmed(value) + "\n"
        }
        let bodyHash = SigV4.sha256Hex(request.body)
        if let claimed = header("x-amz-content-sha256"), claimed != bodyHash {
            throw Self.invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        let canonicalRequest = [
            request.method, Self.canonicalPath(request.path), Self.canonicalQuery(request.query), canonicalHeaders,
            signedList, bodyHash,
        ].joined(separator: "\n")
        let expected = SigV4.signature(
            canonicalRequest: canonicalRequest, amzDate: amzDate,
            scope: "\(day)/\(scopeRegion)/\(scopeService)/aws4_request", key: signingKey(user, day: day))
        guard Self.constantTimeEqual(Array(expected.utf8), Array(signature.lowercased().utf8)) else {
            throw Self.invalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            )
        }
        return user
    }

    /// The signing key of `user` for `day`, cached.
    func signingKey(_ user: Credentials.User, day: String) -> SymmetricKey {
        let cacheKey = "\(user.accessKeyID)/\(day)"
        if let key = lock.withLock({ signingKeys[cacheKey] }) { return key }
        let key = SigV4.signingKey(secret: user.secretAccessKey, day: day, region: region, service: service)
        lock.withLock {
            if signingKeys.count > 1024 { signingKeys.removeAll() }
            signingKeys[cacheKey] = key
        }
        return key
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func canonicalPath(_ path: String) -> String {
        let decoded = path.removingPercentEncoding ?? path
        return decoded.isEmpty ? "/" : SigV4.uriEncode(decoded, keepSlash: true)
    }

    /// A raw query string in canonical form (its pairs decoded first, as received).
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let pieces = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pieces[0]).removingPercentEncoding ?? String(pieces[0])
            let value = pieces.count > 1 ? String(pieces[1]).removingPercentEncoding ?? String(pieces[1]) : ""
            return (key, value)
        }
        return SigV4.canonicalQuery(pairs)
    }
}
