/// One member of a tar archive, with the long name and size from pax or GNU
/// extended headers already applied.
public struct TarEntry: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case file
        case directory
        case symlink(target: String)
        case hardlink(target: String)
        case characterDevice
        case blockDevice
        case fifo
        /// A type flag Kiln does not extract (GNU sparse files, volume labels, ...).
        case unsupported(flag: UInt8)
    }

    public var path: String
    public var kind: Kind
    /// Bytes of data that follow the header (regular files only have any).
    public var size: Int64
    public var mode: UInt32

    public init(path: String, kind: Kind, size: Int64 = 0, mode: UInt32 = 0o644) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
    }
}
