import Diagnostics

/// The `InputConfig.Framework` values of the compilation-job API, with what
/// each one's archive must hold. Only ONNX has a frontend so far.
public enum Framework: String, Sendable, CaseIterable, Codable {
    case tensorflow = "TENSORFLOW"
    case keras = "KERAS"
    case mxnet = "MXNET"
    case onnx = "ONNX"
    case pytorch = "PYTORCH"
    case xgboost = "XGBOOST"
    case tflite = "TFLITE"
    case darknet = "DARKNET"
    case sklearn = "SKLEARN"

    /// Parses the API's spelling; the CLI also accepts lower case.
    public init(parsing text: String) throws {
        guard let framework = Framework(rawValue: text.uppercased()) else {
            throw KilnError.client(
                .inputConfiguration,
                "unknown Framework \(quoted(text)); use one of \(Framework.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        self = framework
    }

    /// The suffix of the one model file an archive for this framework holds.
    public var modelFileSuffix: String? {
        switch self {
        case .onnx: return ".onnx"
        case .pytorch: return ".pth"
        case .keras: return ".h5"
        case .tflite: return ".tflite"
        case .sklearn: return ".joblib"
        case .tensorflow, .mxnet, .xgboost, .darknet: return nil
        }
    }

    /// Fails unless this build of Kiln has a frontend for the framework.
    public func requireFrontend() throws {
        guard self == .onnx else {
            throw KilnError.client(
                .inputConfiguration,
                "Framework \(rawValue) is not supported by this build of Kiln yet (only ONNX is); "
                    + "export the model to ONNX (for example torch.onnx.export or tf2onnx) and use Framework ONNX")
        }
    }
}
