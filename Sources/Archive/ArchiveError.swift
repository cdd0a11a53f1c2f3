/// Why an archive could not be read or extracted, in words a user can act on.
/// The pipeline turns these into `ClientError: InputConfiguration: ...`.
public enum ArchiveError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The gzip stream is damaged: bad header, bad deflate data, CRC or length mismatch.
    case corruptGzip(String)
    /// The input ended before the gzip member or tar entry it was reading.
    case truncated(String)
    /// A tar header or extended header is malformed.
    case corruptTar(String)
    /// An entry that is never extracted: absolute path, `..`, link out of the tree, device.
    case unsafeEntry(path: String, reason: String)
    /// The archive is larger than the configured limits allow.
    case limitExceeded(String)
    /// Reading or writing a file failed.
    case io(String)

    public var description: String {
        switch self {
        case .corruptGzip(let message): return "corrupt gzip data: \(message)"
        case .truncated(let message): return "archive is truncated: \(message)"
        case .corruptTar(let message): return "corrupt tar data: \(message)"
        case .unsafeEntry(let path, let reason): return "refusing entry \(path): \(reason)"
        case .limitExceeded(let message): return message
        case .io(let message): return message
        }
    }
}
