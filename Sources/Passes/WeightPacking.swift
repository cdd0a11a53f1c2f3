import ModelIR

/// Constant weights in the orders the NHWC kernels read them (conv_nhwc.c), packed once at compile time by
/// the passes that choose those kernels (channels-last, fuse-matmul-epilogue): the compiler's advantage
/// over a runtime, which would pack them on every run.
enum WeightPacking {
    /// Output channels (or matrix columns) per panel (KK_NHWC_PANEL), the same on every target.
    static let panel = 32
    /// Columns per sub-panel (KK_NHWC_SUB): a panel of depth D is two [D][16] blocks, so each vector of
    /// columns the micro-kernel reads is one contiguous stream at every vector width.
    static let sub = 16

    /// Where column `lane` (< 32) of depth row `k` lies in a panel of depth `depth`.
    @inline(__always)
    static func offset(lane: Int, k: Int, depth: Int) -> Int {
        (lane / sub) * depth * sub + k * sub + lane % sub
    }

    /// A MatMul's [K][N] → [ceil(N / 32)][2][K][16] (shape [panels, 1, K, 32]), zero past N: the panels of a
    /// 1x1 convolution with K input channels, which kiln::FusedMatMul runs as.
    static func matrixPanels(_ weight: Constant, rows: Int, columns: Int) -> Constant {
        let panels = (columns + panel - 1) / panel
        let count = panels * rows * panel
        let source = weight.storage.bytes
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.initialize(repeating: 0)
            for k in 0..<rows {
                for n in 0..<columns {
                    buffer[(n / panel) * rows * panel + offset(lane: n % panel, k: k, depth: rows)] =
                        source.loadUnaligned(
                            fromByteOffset: (k * columns + n) * 4, as: Float.self)
                }
            }
            initialized = count
        }
        return Constant(float32: values, shape: [panels, 1, rows, panel])
    }

    /// [O][I][3][3] → U = G g Gᵀ per (O, I), as [16][ceil(O / 32)][2][I][16] (shape [16, panels, I, 32]),
    /// zero past O: the 16 products' right-hand sides, each packed like kiln::ConvNHWC's panels. G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].
    static func winograd(_ weight: Constant, outChannels: Int, inChannels: Int) -> Constant {
        let panels = (outChannels + panel - 1) / panel
        let plane = panels * inChannels * panel  // floats between the 16 matrices
        let count = 16 * plane
        let source = weight.storage.bytes
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.initialize(repeating: 0)
            // Unrolled on scalars, no calls: 25 M weights in ResNet-50, and a debug build runs this too.
            let out = buffer.baseAddress!
            for o in 0..<outChannels {
                let panelBase = (o / panel) * inChannels * panel
                for i in 0..<inChannels {
                    let b = (o * inChannels + i) * 36
                    let w00 = Double(source.loadUnaligned(fromByteOffset: b, as: Float.self))
                    let w01 = Double(source.loadUnaligned(fromByteOffset: b + 4, as: Float.self))
                    let w02 = Double(source.loadUnaligned(fromByteOffset: b + 8, as: Float.self))
                    let w10 = Double(source.loadUnaligned(fromByteOffset: b + 12, as: Float.self))
                    let w11 = Double(source.loadUnaligned(fromByteOffset: b + 16, as: Float.self))
                    let w12 = Double(source.loadUnaligned(fromByteOffset: b + 20, as: Float.self))
                    let w20 = Double(source.loadUnaligned(fromByteOffset: b + 24, as: Float.self))
                    let w21 = Double(source.loadUnaligned(fromByteOffset: b + 28, as: Float.self))
                    let w22 = Double(source.loadUnaligned(fromByteOffset: b + 32, as: Float.self))
                    // t = G w (4 x 3): rows w0, ½(w0 + w1 + w2), ½(w0 - w1 + w2), w2.
                    let (t00, t01, t02) = (w00, w01, w02)
                    let (t10, t11, t12) = (0.5 * (w00 + w10 + w20), 0.5 * (w01 + w11 + w21), 0.5 * (w02 + w12 + w22))
                    let (t20, t21, t22) = (0.5 * (w00 - w10 + w20), 0.5 * (w01 - w11 + w21), 0.5 * (w02 - w12 + w22))
                    let (t30, t31, t32) = (w20, w21, w22)
                    // U = t Gᵀ (4 x 4): the same combination along each row of t; U[r][c] is matrix 4r + c.
                    let at = out + panelBase + offset(lane: o % panel, k: i, depth: inChannels)
                    at[0 * plane] = Float(t00)
                    at[1 * plane] = Float(0.5 * (t00 + t01 + t02))
                    at[2 * plane] = Float(0.5 * (t00 - t01 + t02))
                    at[3 * plane] = Float(t02)
                    at[4 * plane] = Float(t10)
                    at[5 * plane] = Float(0.5 * (t10 + t11 + t12))
                    at[6 * plane] = Float(0.5 * (t10 - t11 + t12))
                    at[7 * plane] = Float(t12)
                    at[8 * plane] = Float(t20)
                    at[9 * plane] = Float(0.5 * (t20 + t21 + t22))
                    at[10 * plane] = Float(0.5 * (t20 - t21 + t22))
                    at[11 * plane] = Float(t22)
                    at[12 * plane] = Float(t30)
                    at[13 * plane] = Float(0.5 * (t30 + t31 + t32))
                    at[14 * plane] = Float(0.5 * (t30 - t31 + t32))
                    at[15 * plane] = Float(t32)
                }
            }
            initialized = count
        }
        return Constant(float32: values, shape: [16, panels, inChannels, panel])
    }

    /// [O][I][kh][kw] → [ceil(O / 32)][2][kh][kw][I][16] (shape [panels, taps, I, 32]), zero past O: each
    /// sub-panel one stream for the micro-kernel.
    static func convolutionPanels(_ weight: Constant, outChannels: Int, inChannels: Int, taps: Int) -> Constant {
        let panels = (outChannels + panel - 1) / panel
        let count = panels * taps * inChannels * panel
        let source = weight.storage.bytes
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.initialize(repeating: 0)
            for o in 0..<outChannels {
                let (j, lane, depth) = (o / panel, o % panel, taps * inChannels)
                for i in 0..<inChannels {
                    for t in 0..<taps {
                        let from = (o * inChannels + i) * taps + t
                        buffer[j * depth * panel + offset(lane: lane, k: t * inChannels + i, depth: depth)] =
                            source.loadUnaligned(
                                fromByteOffset: from * 4, as: Float.self)
                    }
                }
            }
            initialized = count
        }
        return Constant(float32: values, shape: [panels, taps, inChannels, panel])
    }

    /// [C][1][kh][kw] → [kh][kw][C]: a tap's weights for a vector of channels are contiguous.
    static func depthwise(_ weight: Constant, channels: Int, taps: Int) -> Constant {
        let source = weight.storage.bytes
        let values = [Float](unsafeUninitializedCapacity: channels * taps) { buffer, initialized in
            for c in 0..<channels {
                for t in 0..<taps {
                    buffer[t * channels + c] = source.loadUnaligned(fromByteOffset: (c * taps + t) * 4, as: Float.self)
                }
            }
            initialized = channels * taps
        }
        return Constant(float32: values, shape: [taps, channels])
    }
}
