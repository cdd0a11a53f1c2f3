import Foundation
import Testing

@testable import APIServer

/// Known answers: AWS's public SigV4 test suite (get-vanilla, get-vanilla-query-order-key) and a
/// SageMaker request, each signed by botocore 1.43 on this machine (`SigV4Auth.add_auth` at a fixed time).
enum Vectors {
    static let suiteUser = Credentials.User(
        name: "example", accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        accountID: "123456789012")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 20150830T123600Z
    static let sageMakerDate = Date(timeIntervalSince1970: 1_795_946_400)  // 20261129T100000Z

    static func authorization(_ scope: String, _ signed: String, _ signature: String) -> String {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\(scope)/aws4_request, SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// A GET of the suite's host at its date, signed with host and x-amz-date.
    static func suiteRequest(query: String, signature: String) -> SigV4Verifier.Request {
        SigV4Verifier.Request(
            method: "GET", path: "/", query: query,
            headers: [
                ("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z"),
                ("Authorization", authorization("20150830/us-east-1/service", "host;x-amz-date", signature)),
            ], body: [])
    }

    static let getVanilla = suiteRequest(
        query: "", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    static let queryOrder = suiteRequest(
        query: "Param2=value2&Param1=value1",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")

    static let describe = SigV4Verifier.Request(
        method: "POST", path: "/", query: "",
        headers: [
            ("X-Amz-Target", "SageMaker.DescribeCompilationJob"), ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Date", "20261129T100000Z"), ("host", "127.0.0.1:8080"),
            (
                "Authorization",
                authorization(
                    "20261129/us-west-2/sagemaker", "content-type;host;x-amz-date;x-amz-target",
                    "119a6db7caaa282a29868086c4801834b47d0423df89fb7a14ee5c4521c2d76b")
            ),
        ], body: Array(#"{"CompilationJobName": "job-1"}"#.utf8))
}

func failure(_ body: () throws -> Void) -> SigV4Verifier.Failure? {
    do {
        try body()
        return nil
    } catch {
        return error as? SigV4Verifier.Failure ?? .init(code: "\(error)", message: "", status: 0)
    }
}

@Suite("SigV4 verification")
struct SigV4Tests {
    let suite = SigV4Verifier(
        credentials: try! Credentials(users: [Vectors.suiteUser]), region: "us-east-1", service: "service")
    let sageMaker = SigV4Verifier(credentials: try! Credentials(users: [Vectors.suiteUser]), region: "us-west-2")

    @Test("accepts AWS's test-suite vectors and a botocore-signed SageMaker request")
    func knownAnswers() throws {
        #expect(try suite.verify(Vectors.getVanilla, now: Vectors.suiteDate).accountID == "123456789012")
        #expect(try suite.verify(Vectors.queryOrder, now: Vectors.suiteDate).name == "example")
        #expect(
            try sageMaker.verify(Vectors.describe, now: Vectors.sageMakerDate.addingTimeInterval(600)).name == "example"
        )
    }

    @Test("refuses tampering, wrong secrets, unknown keys, missing or partial signatures and skewed dates")
    func refusals() throws {
        let now = Vectors.sageMakerDate
        func check(
            _ request: SigV4Verifier.Request, at date: Date = Vectors.sageMakerDate, verifier: SigV4Verifier? = nil
        ) -> String {
            failure { _ = try (verifier ?? sageMaker).verify(request, now: date) }?.code ?? "accepted"
        }
        var tamperedBody = Vectors.describe
        tamperedBody.body = Array(#"{"CompilationJobName": "job-2"}"#.utf8)
        #expect(check(tamperedBody) == "InvalidSignatureException")
        var tamperedHeader = Vectors.describe
        tamperedHeader.headers[0].1 = "SageMaker.DeleteCompilationJob"
        #expect(check(tamperedHeader) == "InvalidSignatureException")
        var wrongSecret = Credentials.User(
            name: "example", accessKeyID: "AKIDEXAMPLE", secretAccessKey: "not-the-secret", accountID: "123456789012")
        let wrong = SigV4Verifier(credentials: try Credentials(users: [wrongSecret]), region: "us-west-2")
        #expect(check(Vectors.describe, verifier: wrong) == "InvalidSignatureException")
        wrongSecret.accessKeyID = "AKIDOTHER"
        let unknown = SigV4Verifier(credentials: try Credentials(users: [wrongSecret]), region: "us-west-2")
        #expect(check(Vectors.describe, verifier: unknown) == "UnrecognizedClientException")
        var unsigned = Vectors.describe
        unsigned.headers.removeLast()
        #expect(check(unsigned) == "MissingAuthenticationTokenException")
        var partial = Vectors.describe
        partial.headers[4].1 = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-west-2/sagemaker/aws4_request"
        #expect(check(partial) == "IncompleteSignatureException")
        let late = failure { _ = try sageMaker.verify(Vectors.describe, now: now.addingTimeInterval(16 * 60)) }
        #expect(late?.code == "InvalidSignatureException")
        #expect(
            late?.message
                == "Signature expired: 20261129T100000Z is now earlier than 20261129T100100Z (20261129T101600Z - 15 min.)"
        )
        #expect(check(Vectors.describe, at: now.addingTimeInterval(-16 * 60)) == "InvalidSignatureException")
        let otherRegion = SigV4Verifier(credentials: try Credentials(users: [Vectors.suiteUser]), region: "eu-west-1")
        #expect(check(Vectors.describe, verifier: otherRegion) == "InvalidSignatureException")
        var claimedHash = Vectors.describe
        claimedHash.headers.append(("x-amz-content-sha256", String(repeating: "0", count: 64)))
        #expect(check(claimedHash) == "InvalidSignatureException")
    }

    @Test("reads credentials files and refuses ones others can read")
    func credentialsFile() throws {
        let credentials = try Credentials.parse(
            """
            # users of kiln serve
            [alice]
            aws_access_key_id = AKIAALICE
            aws_secret_access_key = s3cr3t = with equals
            aws_account_id = 111111111111
            """)
        #expect(credentials.user(accessKeyID: "AKIAALICE")?.secretAccessKey == "s3cr3t = with equals")
        #expect(throws: Error.self) { try Credentials.parse("[bob]\naws_access_key_id = K\naws_secret_access_key = S") }
        #expect(throws: Error.self) {
            try Credentials.parse("[bob]\naws_access_key_id = K\naws_secret_access_key = S\naws_account_id = 12")
        }
        let path = FileManager.default.temporaryDirectory.path + "/kiln-creds-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "[a]\naws_access_key_id = K\naws_secret_access_key = S\naws_account_id = 111111111111\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: Error.self) { try Credentials.load(path: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(try Credentials.load(path: path).user(accessKeyID: "K")?.accountID == "111111111111")
    }
}
