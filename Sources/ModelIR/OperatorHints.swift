/// What to do about operators Kiln does not compile, where there is something better to say than
/// "not implemented" (keyed by qualified op type, as `Node.qualifiedOpType` spells it).
public enum OperatorHints {
    public static let hints: [String: String] = [
        "com.microsoft::DynamicQuantizeLSTM":
            "an LSTM with int8 weights whose input and state ONNX Runtime re-quantizes at every step; quantize the "
            + "model without 'LSTM' in op_types_to_quantize (onnxruntime.quantization.quantize_dynamic) to keep a "
            + "float LSTM, which Kiln compiles",
        "ai.onnx.contrib::SentencepieceTokenizer":
            "a string tokenizer (onnxruntime-extensions); Kiln compiles tensors of numbers, so tokenize before the "
            + "model and feed it the token ids",
    ]

    /// " (hint; hint)" for the ops in `ops` that have one, "" otherwise.
    public static func suffix(for ops: [String]) -> String {
        let found = ops.compactMap { op in hints[op].map { "\(op) is \($0)" } }
        return found.isEmpty ? "" : "; " + found.joined(separator: "; ")
    }
}
