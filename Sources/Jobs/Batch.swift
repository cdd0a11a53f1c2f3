import Foundation

/// A batch of CreateCompilationJob requests run together (`kiln batch`): read
/// from a directory of JSON files or one JSON list, submitted, followed to
/// their end, and reported as a table, JUnit XML and JSON for CI systems.
public struct Batch: Sendable {
    /// One job of the batch: its request (or why it could not be read) and, once known, its record.
    public struct Entry: Sendable {
        public var source: String
        public var name: String
        public var request: CreateCompilationJobRequest?
        /// Why the job never ran: unreadable JSON, or Create's error.
        public var submitError: String?
        public var record: JobRecord?

        public var status: String { submitError != nil ? "FAILED" : record?.status.rawValue ?? "STARTING" }
        public var isFinal: Bool { submitError != nil || record?.status.isFinal == true }
        public var failed: Bool { submitError != nil || record?.status == .failed }
        public var failureReason: String { submitError ?? record?.failureReason ?? "" }
        /// From creation to the end (or to now while running).
        public func seconds(now: Date = Date()) -> Double {
            guard let record else { return 0 }
            return (record.endTime ?? now).timeIntervalSince(record.creationTime)
        }
    }

    public private(set) var entries: [Entry]

    /// Reads the requests: every `*.json` file of a directory (sorted by name), or one file with a JSON list.
    public init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw APIError(.validation, "\(path) does not exist")
        }
        let decoder = AWSJSON.decoder()
        func name(_ request: CreateCompilationJobRequest?, _ fallback: String) -> String {
            request?.compilationJobName ?? fallback
        }
        if isDirectory.boolValue {
            let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".json") }
                .sorted()
            guard !files.isEmpty else { throw APIError(.validation, "\(path) holds no .json files") }
            entries = files.map { file in
                let source = path + "/" + file
                do {
                    let data = try Data(contentsOf: URL(fileURLWithPath: source))
                    let request = try decoder.decode(CreateCompilationJobRequest.self, from: data)
                    return Entry(source: file, name: name(request, file), request: request)
                } catch {
                    return Entry(
                        source: file, name: file,
                        submitError:
                            "ClientError: Batch: \(file) is not a CreateCompilationJob request: \(AWSJSON.describe(decodingError: error))"
                    )
                }
            }
        } else {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let requests: [CreateCompilationJobRequest]
            do {
                requests = try decoder.decode([CreateCompilationJobRequest].self, from: data)
            } catch {
                throw APIError(
                    .validation,
                    "\(path) is not a JSON list of CreateCompilationJob requests: \(AWSJSON.describe(decodingError: error))"
                )
            }
            entries = requests.enumerated().map { index, request in
                Entry(source: "\(path)[\(index)]", name: name(request, "#\(index)"), request: request)
            }
        }
    }

    /// Creates every readable job; Create's errors are kept as the entry's failure.
    public mutating func submit(with service: JobService) {
        for index in entries.indices where entries[index].submitError == nil {
            guard let request = entries[index].request else { continue }
            do {
                _ = try service.create(request)
                entries[index].record = try service.record(
                    CompilationJobNameRequest(compilationJobName: entries[index].name))
            } catch let error as APIError {
                entries[index].submitError = "\(error.code.rawValue): \(error.message)"
            } catch {
                entries[index].submitError = "InternalFailure: \(error)"
            }
        }
    }

    /// Reads every submitted job's current record; returns the entries that ended since the last refresh.
    public mutating func refresh(with service: JobService) -> [Entry] {
        var ended: [Entry] = []
        for index in entries.indices where !entries[index].isFinal {
            guard
                let record = try? service.record(CompilationJobNameRequest(compilationJobName: entries[index].name))
            else { continue }
            entries[index].record = record
            if record.status.isFinal { ended.append(entries[index]) }
        }
        return ended
    }

    public var isDone: Bool { entries.allSatisfy(\.isFinal) }
    public var failures: Int { entries.filter(\.failed).count }

    public func counts() -> [String: Int] {
        entries.reduce(into: [:]) { $0[$1.status, default: 0] += 1 }
    }

    /// The summary table: job, status, seconds, failure reason.
    public func table(now: Date = Date()) -> String {
        let width = max(3, entries.map(\.name.count).max() ?? 3)
        var lines = [
            "job".padding(toLength: width, withPad: " ", startingAt: 0) + "  status      seconds  failure reason"
        ]
        for entry in entries {
            lines.append(
                entry.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + entry.status.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%9.1f", entry.seconds(now: now)) + "  " + entry.failureReason)
        }
        return lines.joined(separator: "\n")
    }

    /// JUnit XML: one testcase per job; FAILED jobs fail with their FailureReason, STOPPED ones are skipped.
    public func junit(now: Date = Date()) -> String {
        func escape(_ text: String) -> String {
            var out = ""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "'": out += "&apos;"
                case "\n", "\t": out.unicodeScalars.append(scalar)
                default:
                    // XML 1.0 cannot carry other control characters at all.
                    if scalar.value < 0x20 || (0xD800...0xDFFF).contains(scalar.value) || scalar.value == 0xFFFE
                        || scalar.value == 0xFFFF
                    {
                        out += "?"
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out
        }
        let total = entries.reduce(0) { $0 + $1.seconds(now: now) }
        let skipped = entries.filter { $0.status == "STOPPED" }.count
        var xml = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>"]
        xml.append(
            "<testsuites name=\"kiln batch\" tests=\"\(entries.count)\" failures=\"\(failures)\" time=\"\(String(format: "%.3f", total))\">"
        )
        xml.append(
            "  <testsuite name=\"kiln batch\" tests=\"\(entries.count)\" failures=\"\(failures)\" skipped=\"\(skipped)\" errors=\"0\" time=\"\(String(format: "%.3f", total))\">"
        )
        for entry in entries {
            let open =
                "    <testcase classname=\"kiln.compilation-job\" name=\"\(escape(entry.name))\" time=\"\(String(format: "%.3f", entry.seconds(now: now)))\""
            if entry.failed {
                xml.append(open + ">")
                xml.append(
                    "      <failure message=\"\(escape(entry.failureReason))\" type=\"\(entry.status)\">\(escape(entry.failureReason))</failure>"
                )
                xml.append("    </testcase>")
            } else if entry.status == "STOPPED" {
                xml.append(open + ">")
                xml.append("      <skipped message=\"the job was stopped\"/>")
                xml.append("    </testcase>")
            } else {
                xml.append(open + "/>")
            }
        }
        xml.append("  </testsuite>")
        xml.append("</testsuites>")
        return xml.joined(separator: "\n") + "\n"
    }

    /// The JSON report: every job with its status, time, reason, ARN and artifact.
    public func json(now: Date = Date()) throws -> Data {
        struct Item: Encodable {
            var name: String
            var source: String
            var arn: String?
            var status: String
            var seconds: Double
            var failureReason: String
            var artifact: String?
            var artifactDigest: String?
        }
        struct Report: Encodable {
            var jobs: [Item]
            var counts: [String: Int]
            var failures: Int
        }
        let items = entries.map {
            Item(
                name: $0.name, source: $0.source, arn: $0.record?.arn, status: $0.status,
                seconds: ($0.seconds(now: now) * 1000).rounded() / 1000, failureReason: $0.failureReason,
                artifact: $0.record?.status == .completed ? $0.record?.artifactURI : nil,
                artifactDigest: $0.record?.artifactDigest)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(Report(jobs: items, counts: counts(), failures: failures))
    }
}
