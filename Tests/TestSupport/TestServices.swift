import Foundation

/// The servers `scripts/with-services` starts for the tests (a PostgreSQL cluster, moto's S3 server).
/// Tests that need one run when it is there; `scripts/test` also sets KILN_TEST_REQUIRE_SERVICES=1, and
/// then a missing server fails the run instead of leaving those tests out.
public enum TestServices {
    private static func variable(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    public static var required: Bool { variable("KILN_TEST_REQUIRE_SERVICES") == "1" }

    /// `postgres://kiln@127.0.0.1:PORT/kiln`, a superuser on a throw-away cluster.
    public static var postgres: String? { variable("KILN_TEST_POSTGRES") }

    /// The moto S3 endpoint and a key pair it accepts.
    public static var s3: (endpoint: String, accessKey: String, secretKey: String)? {
        guard let endpoint = variable("KILN_TEST_S3_ENDPOINT"), let key = variable("KILN_TEST_S3_ACCESS_KEY"),
            let secret = variable("KILN_TEST_S3_SECRET_KEY")
        else { return nil }
        return (endpoint, key, secret)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A new, empty database on the test cluster, for one test; its URL.
    public static func newPostgresDatabase() throws -> String {
        guard let base = postgres, var url = URLComponents(string: base) else {
            throw Failure(description: "KILN_TEST_POSTGRES is not set (run the tests through scripts/test)")
        }
        let name = "kiln_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", base, "-q", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE \(name)"]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "CREATE DATABASE failed: \(String(decoding: message, as: UTF8.self))")
        }
        url.path = "/" + name
        return url.string!
    }
}

/// Runs blocking work (an S3 request waiting on URLSession, which needs the cooperative pool to make
/// progress) on a thread of its own, as the pipeline runs its stages, and awaits its result.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Starts `process` with its stdout on a pipe and returns the first line it prints (servers print
/// their address first), with the pipe for the rest.
public func startReadingFirstLine(_ process: Process) throws -> (line: String, pipe: Pipe) {
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        line += chunk
    }
    return (String(decoding: line, as: UTF8.self), out)
}
