import Diagnostics
import Testing

@testable import ObjectStore

@Suite("object URIs and the local object store")
struct ObjectURITests {
    @Test("parses s3, file, https and plain paths")
    func parses() throws {
        #expect(
            try ObjectURI(parsing: "s3://bucket/a/model.tar.gz", workingDirectory: "/w")
                == .s3(bucket: "bucket", key: "a/model.tar.gz"))
        #expect(
            try ObjectURI(parsing: "file:///tmp/m%20x.tar.gz", workingDirectory: "/w") == .file(path: "/tmp/m x.tar.gz")
        )
        #expect(
            try ObjectURI(parsing: "file://localhost/tmp/m.tar.gz", workingDirectory: "/w")
                == .file(path: "/tmp/m.tar.gz"))
        #expect(try ObjectURI(parsing: "models/m.tar.gz", workingDirectory: "/w") == .file(path: "/w/models/m.tar.gz"))
        #expect(
            try ObjectURI(parsing: "https://b.s3.amazonaws.com/k", workingDirectory: "/w")
                == .https("https://b.s3.amazonaws.com/k"))
        #expect(try ObjectURI(parsing: "s3://b/models/model.tar.gz", workingDirectory: "/").baseName == "model.tar.gz")
    }

    @Test(
        "rejects malformed URIs",
        arguments: ["s3://bucket", "s3:///key", "s3://bucket/", "file://relative/x", "ftp://host/x", ""])
    func rejects(text: String) {
        let error = #expect(throws: KilnError.self) { try ObjectURI(parsing: text, workingDirectory: "/w") }
        #expect(error?.category == .inputConfiguration)
    }

    @Test("maps s3://bucket/key under objects/ and refuses keys that would leave it")
    func localStore() throws {
        let store = LocalObjectStore(root: "/home/k/.kiln/objects")
        #expect(try store.path(bucket: "models", key: "a/b.tar.gz") == "/home/k/.kiln/objects/models/a/b.tar.gz")
        for key in ["../../etc/passwd", "a/../../b", "a//b", "./a"] {
            #expect(throws: KilnError.self) { try store.path(bucket: "models", key: key) }
        }
        for bucket in ["..", "UPPER", "a", "has/slash"] {
            #expect(throws: KilnError.self) { try store.path(bucket: bucket, key: "k") }
        }
    }

    @Test("says where a missing S3 object would be")
    func missingObject() throws {
        let fetcher = ObjectFetcher(store: LocalObjectStore(root: "/nonexistent/objects"))
        let error = #expect(throws: KilnError.self) {
            try fetcher.localPath(
                for: .s3(bucket: "models", key: "m.tar.gz"), downloadDirectory: "/nonexistent/fetched")
        }
        #expect(
            error?.failureReason
                == "ClientError: InputConfiguration: s3://models/m.tar.gz does not exist (bucket 'models', key 'm.tar.gz'; the local object store keeps it at /nonexistent/objects/models/m.tar.gz)"
        )
    }

    @Test("names https URIs as needing an S3 endpoint or credentials when none is configured")
    func https() {
        let fetcher = ObjectFetcher(store: LocalObjectStore(root: "/x"))
        let error = #expect(throws: KilnError.self) {
            try fetcher.localPath(for: .https("https://b.s3.amazonaws.com/k"), downloadDirectory: "/x/fetched")
        }
        #expect(error?.message.contains("needs an S3 endpoint or credentials") == true)
    }
}
