/// Caps that stop a gzip or tar bomb early: total uncompressed bytes, number
/// of entries, and the length of any one path.
public struct ExtractionLimits: Sendable, Equatable {
    public var maximumTotalBytes: Int64
    public var maximumEntries: Int
    public var maximumPathLength: Int

    public init(maximumTotalBytes: Int64 = 8 << 30, maximumEntries: Int = 100_000, maximumPathLength: Int = 4096) {
        self.maximumTotalBytes = maximumTotalBytes
        self.maximumEntries = maximumEntries
        self.maximumPathLength = maximumPathLength
    }

    /// The defaults: 8 GiB, 100,000 entries, 4,096-byte paths.
    public static let standard = ExtractionLimits()
}
