import Diagnostics
import Foundation
import Pipeline
import Runtime
import Targets
import TestSupport
import Testing

/// Compiles `model` for this machine (or `target`) and returns the compilation.
func compile(
    _ model: ModelSpec, config: String? = nil,
    target: TargetRequest = .platform(
        os: "LINUX", arch: "X86_64", accelerator: nil, compilerOptions: #"{"mcpu": "native"}"#),
    in directory: TemporaryDirectory
) async throws -> Compilation {
    try await compile(model.bytes, config: config, target: target, in: directory)
}

/// This machine's CPU (or `mcpu`, one whose code it runs) with the activations in `layout` ("NHWC", the
/// default, or "NCHW"): tests of a kernel written for one layout pin it. The optimizer plans for `l2CacheKiB` of
/// L2 (CompilerOptions `l2-cache-kib`), not this machine's, so the kernels a test expects do not depend on
/// where it runs.
func native(layout: String, l2CacheKiB: Int = 512, mcpu: String = "native") -> TargetRequest {
    .platform(
        os: "LINUX", arch: "X86_64", accelerator: nil,
        compilerOptions: #"{"mcpu": "\#(mcpu)", "layout": "\#(layout)", "l2-cache-kib": \#(l2CacheKiB)}"#)
}

/// Compiles the ONNX bytes `model`.
func compile(
    _ model: [UInt8], config: String? = nil, target: TargetRequest, in directory: TemporaryDirectory
) async throws -> Compilation {
    let path = try directory.write("model.onnx", model)
    let pipeline = Pipeline(
        environment: PipelineEnvironment(home: .init(path: directory.path + "/home"), workingDirectory: directory.path))
    return try await pipeline.compile(
        PipelineRequest(modelURI: path, framework: .onnx, dataInputConfig: config), target: target,
        outputURI: directory.path + "/out")
}

/// Runs the artifact at `path` on 1 thread, then `runs` times each on 2 and 3 threads, expecting the same bytes.
func expectSameBytesOnThreads(_ path: String, _ inputs: [Data], runs: Int = 1) throws {
    let single = try OpenedArtifact(path: path, threads: 1).loaded.run(inputs)
    for threads in [2, 3] {
        let artifact = try OpenedArtifact(path: path, threads: threads)
        for _ in 0..<runs { #expect(try artifact.loaded.run(inputs) == single, "\(threads) threads") }
    }
}

/// Expects `got` to hold `expected`'s values within 1e-5 of `expected`'s largest magnitude (at least 1): an
/// element can be a small sum of large products.
func expectClose(
    _ got: [Float], _ expected: [Float], _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        got.count == expected.count, "\(label): \(got.count) values, not \(expected.count)",
        sourceLocation: sourceLocation)
    let scale = max(1, expected.map(abs).max() ?? 0)
    let wrong = zip(got, expected).enumerated().filter { abs($0.element.0 - $0.element.1) > 1e-5 * scale }
    #expect(
        wrong.isEmpty, "\(label): \(wrong.count) elements differ, the first \(wrong.first.map { "\($0)" } ?? "")",
        sourceLocation: sourceLocation)
}

func floats(_ data: Data) -> [Float] { data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
func bytes(_ values: [Float]) -> Data { values.withUnsafeBytes { Data($0) } }

@Suite("compiling and running models")
struct CompileTests {
    @Test("a compiled model computes what ONNX defines: y = Relu(x + b)")
    func computes() async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(reluModel(), config: "[[2,4]]", in: directory)
        #expect(
            result.records.map(\.stage.rawValue) == [
                "fetch", "unpack", "parse", "check", "optimize", "lower", "build", "pack", "upload",
            ])
        #expect(try #require(result.artifactPath).hasSuffix("/out/model-LINUX_X86_64.tar.gz"))
        let artifact = try OpenedArtifact(path: try #require(result.artifactPath))
        let output = try artifact.loaded.run([bytes([1, 2, 3, 4, -5, 6, -7, 8])])
        #expect(floats(output[0]) == [2, 0, 6, 0, 0, 4, 0, 4])
    }

    @Test("node and value names with quotes, backslashes and comment markers never reach C as code")
    func hostileNames() async throws {
        let evil = #"a"b\c*/ int x; /* ??= "#
        let graph = GraphSpec(
            name: "*/ #error injected",
            nodes: [NodeSpec("Relu", [evil], ["out\"put*/"], name: "*/ abort(); /*")],
            inputs: [ValueSpec(evil, ElemType.float, [3])], outputs: [ValueSpec("out\"put*/", ElemType.float, [3])])
        let directory = try TemporaryDirectory()
        let result = try await compile(ModelSpec(graph: graph), in: directory)
        let artifact = try OpenedArtifact(path: try #require(result.artifactPath))
        #expect(artifact.loaded.manifest.inputs[0].name == evil)
        #expect(floats(try artifact.loaded.run([bytes([-1, 0, 2])])[0]) == [0, 0, 2])
    }

    @Test("a node that reads one value twice frees its buffer once: two live tensors never share it")
    func valueReadTwice() async throws {
        // a = Relu(x); b = Add(a, a): a is freed after b. Sigmoid(b) and Neg(b) are then live together; had a's
        // block been freed twice, both would be placed in it.
        let graph = GraphSpec(
            nodes: [
                NodeSpec("Relu", ["x"], ["a"], name: "a"), NodeSpec("Add", ["a", "a"], ["b"], name: "b"),
                NodeSpec("Sigmoid", ["b"], ["c"], name: "c"), NodeSpec("Neg", ["b"], ["e"], name: "e"),
                NodeSpec("Add", ["c", "e"], ["y"], name: "y"),
            ],
            inputs: [ValueSpec("x", ElemType.float, [64])], outputs: [ValueSpec("y", ElemType.float, [64])])
        let directory = try TemporaryDirectory()
        let result = try await compile(ModelSpec(graph: graph), in: directory)
        let x = (0..<64).map { Float($0 - 32) / 8 }
        let y = floats(try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])[0])
        for (value, input) in zip(y, x) {
            let b = 2 * Double(max(0, input))
            let expected = 1 / (1 + exp(-b)) - b
            #expect(abs(Double(value) - expected) <= 1e-6, "y(\(input)) = \(value), not \(expected)")
        }
    }

    @Test("zero-size tensors compile and run")
    func zeroSize() async throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("Relu", ["x"], ["y"])], inputs: [ValueSpec("x", ElemType.float, [0, 3])],
            outputs: [ValueSpec("y", ElemType.float, [0, 3])])
        let directory = try TemporaryDirectory()
        let result = try await compile(ModelSpec(graph: graph), in: directory)
        let output = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([Data()])
        #expect(output[0].isEmpty)
    }

    @Test("names every unsupported operator in one reason")
    func unsupportedOps() async throws {
        let graph = GraphSpec(
            nodes: [
                NodeSpec("Relu", ["x"], ["a"]), NodeSpec("Custom", ["a"], ["b"], domain: "com.example"),
                NodeSpec("Other", ["b"], ["y"], domain: "com.example"),
            ],
            inputs: [ValueSpec("x", ElemType.float, [2])], outputs: [ValueSpec("y", ElemType.float, [2])])
        let directory = try TemporaryDirectory()
        var model = ModelSpec(graph: graph)
        model.opsets.append(("com.example", 1))
        do {
            _ = try await compile(model, in: directory)
            Issue.record("compiled a model with unknown ops")
        } catch let failure as PipelineFailure {
            #expect(failure.error.category == .operatorNotImplemented)
            #expect(failure.failureReason.contains("com.example::Custom"))
            #expect(failure.failureReason.contains("com.example::Other"))
        }
    }

    @Test("identical inputs give byte-identical artifacts, and the second build reuses cached kernels")
    func deterministicAndCached() async throws {
        let directory = try TemporaryDirectory()
        let first = try await compile(reluModel(), config: "[[1,4]]", in: directory)
        let firstBytes = try Data(contentsOf: URL(fileURLWithPath: try #require(first.artifactPath)))
        let second = try await compile(reluModel(), config: "[[1,4]]", in: directory)
        let secondBytes = try Data(contentsOf: URL(fileURLWithPath: try #require(second.artifactPath)))
        #expect(firstBytes == secondBytes)
        #expect(first.artifactDigest == second.artifactDigest)
        #expect(first.kernelCacheHits == 0)
        #expect(second.kernelCacheHits == 2)
    }

    @Test("an artifact for a CPU with instructions this one lacks refuses to load, naming the missing features")
    func missingInstructionSet() async throws {
        // The first CPU whose features this machine lacks: AVX-512 itself, else AVX512-FP16 (Sapphire Rapids).
        let candidates = [("skylake-avx512", "avx512f"), ("sapphirerapids", "avx512fp16")]
        let (mcpu, missing) = try #require(
            candidates.first { !HostCPU.features.contains($0.1) }, "this machine has every feature Kiln checks")
        let directory = try TemporaryDirectory()
        let result = try await compile(
            reluModel(), config: "[[1,4]]",
            target: .platform(
                os: "LINUX", arch: "X86_64", accelerator: nil, compilerOptions: #"{"mcpu": "\#(mcpu)"}"#),
            in: directory)
        #expect(throws: KilnError.self) { try OpenedArtifact(path: try #require(result.artifactPath)) }
        do {
            _ = try OpenedArtifact(path: try #require(result.artifactPath))
        } catch let error as KilnError {
            #expect(error.message.contains(missing), "\(error)")
        }
    }

    @Test("this machine's features as /proc/cpuinfo names them, in clang's spelling")
    func hostFeatures() throws {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") }).split(separator: " "))
        #expect(HostCPU.features.contains("avx512vnni") == flags.contains("avx512_vnni"))
        #expect(HostCPU.features.contains("avx2") == flags.contains("avx2"))
        #expect(HostCPU.features.allSatisfy(HostCPU.checkable.contains))
    }

    @Test("an ml_c5 artifact runs here through the variant this CPU has (AVX-512 or AVX2)")
    func fallbackVariant() async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(
            reluModel(), config: "[[1,4]]", target: .device("ml_c5", compilerOptions: nil), in: directory)
        let artifact = try OpenedArtifact(path: try #require(result.artifactPath))
        #expect(result.manifest.variants.map(\.name) == ["skylake-avx512", "haswell"])
        #expect(["skylake-avx512", "haswell"].contains(artifact.loaded.variant))
        #expect(floats(try artifact.loaded.run([bytes([0, 0, 0, 0])])[0]) == [1, 0, 3, 0])
    }

    @Test("devices this build cannot target fail with a TargetDevice reason")
    func unsupportedDevice() async throws {
        let directory = try TemporaryDirectory()
        for device in ["coreml", "ml_p3", "not_a_device"] {
            do {
                _ = try await compile(
                    reluModel(), config: "[[1,4]]", target: .device(device, compilerOptions: nil), in: directory)
                Issue.record("compiled for \(device)")
            } catch let failure as PipelineFailure {
                #expect(failure.failureReason.hasPrefix("ClientError: TargetDevice: "), "\(failure.failureReason)")
            }
        }
    }
}

@Suite("the GEMM kernels")
struct GemmTests {
    /// y = MatMul(x, w) and z = Gemm(x, v, transB=1): shapes that leave partial register tiles and k blocks.
    static func model(m: Int, k: Int, n: Int, w: [Float], v: [Float]) -> ModelSpec {
        ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("MatMul", ["x", "w"], ["y"], name: "matmul"),
                    NodeSpec("Gemm", ["x", "v"], ["z"], name: "gemm", [("transB", .int(1)), ("alpha", .float(0.5))]),
                ],
                inputs: [ValueSpec("x", ElemType.float, [.value(m), .value(k)])],
                outputs: [
                    ValueSpec("y", ElemType.float, [.value(m), .value(n)]),
                    ValueSpec("z", ElemType.float, [.value(m), .value(n)]),
                ],
                initializers: [.float("w", [k, n], w), .float("v", [n, k], v)]))
    }

    @Test(
        "MatMul and Gemm(transB) agree with a double-precision reference at tile and block edges",
        arguments: [(7, 257, 33), (1, 3, 1), (6, 256, 16), (13, 600, 100), (5, 9, 1100)])
    func edges(m: Int, k: Int, n: Int) async throws {
        var random = SeededGenerator(state: UInt64(m * 1_000_003 + k * 1_009 + n))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (x, w, v) = (values(m * k), values(k * n), values(n * k))
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.model(m: m, k: k, n: n, w: w, v: v), in: directory)
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])
        let (y, z) = (floats(outputs[0]), floats(outputs[1]))
        for i in 0..<m {
            for j in 0..<n {
                var product = 0.0
                var transposed = 0.0
                for p in 0..<k {
                    product += Double(x[i * k + p]) * Double(w[p * n + j])
                    transposed += Double(x[i * k + p]) * Double(v[j * k + p])
                }
                #expect(abs(Double(y[i * n + j]) - product) <= 1e-4 * max(1, abs(product)), "y[\(i),\(j)]")
                #expect(abs(Double(z[i * n + j]) - 0.5 * transposed) <= 1e-4 * max(1, abs(transposed)), "z[\(i),\(j)]")
            }
        }
    }
}

extension GemmTests {
    @Test(
        "products split over 2 and 3 threads give the same bytes as one thread (column panels or row blocks never share an element)",
        // (1, 784, 512): a matrix-vector product below KK_PARALLEL_MACS, split all the same (it streams its weights).
        arguments: [(64, 300, 500), (4, 2048, 1000), (96, 700, 130), (512, 300, 40), (1, 784, 512)])
    func threads(m: Int, k: Int, n: Int) async throws {
        var random = SeededGenerator(state: UInt64(m + k + n))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let directory = try TemporaryDirectory()
        let result = try await compile(
            Self.model(m: m, k: k, n: n, w: values(k * n), v: values(n * k)), in: directory)
        let path = try #require(result.artifactPath)
        let x = bytes(values(m * k))
        try expectSameBytesOnThreads(path, [x], runs: 3)
    }
}

extension DepthwiseTests {
    @Test(
        "a 3x3 convolution, a depthwise one and max pooling give the same bytes on 1, 2, 3 threads, in either layout",
        arguments: ["NHWC", "NCHW"])
    func threads(layout: String) async throws {
        var random = SeededGenerator(state: 42)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (c, h, w, k) = (32, 40, 40, 48)
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec(
                        "Conv", ["x", "w1", "b1"], ["a"], name: "conv",
                        [("kernel_shape", .ints([3, 3])), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec(
                        "Conv", ["a", "w2"], ["d"], name: "dw",
                        [("group", .int(k)), ("kernel_shape", .ints([3, 3])), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec(
                        "MaxPool", ["d"], ["y"], name: "pool",
                        [("kernel_shape", .ints([3, 3])), ("pads", .ints([1, 1, 1, 1]))]),
                ],
                inputs: [ValueSpec("x", ElemType.float, [1, .value(c), .value(h), .value(w)])],
                outputs: [ValueSpec("y", ElemType.float, [1, .value(k), .value(h), .value(w)])],
                initializers: [
                    .float("w1", [k, c, 3, 3], values(k * c * 9)), .float("b1", [k], values(k)),
                    .float("w2", [k, 1, 3, 3], values(k * 9)),
                ]))
        let directory = try TemporaryDirectory()
        let path = try #require(try await compile(model, target: native(layout: layout), in: directory).artifactPath)
        let x = bytes(values(c * h * w))
        try expectSameBytesOnThreads(path, [x])
    }
}

@Suite("the depthwise convolution kernel")
struct DepthwiseTests {
    @Test(
        "depthwise Conv matches a direct reference for strides, dilations, asymmetric pads and wide rows, in either layout",
        arguments: [
            // channels, height, width, kernel, stride, dilation, pads (top, left, bottom, right)
            (3, 7, 9, 3, 1, 1, [1, 1, 1, 1]), (4, 8, 8, 3, 2, 1, [1, 1, 1, 1]), (2, 9, 11, 5, 2, 2, [0, 3, 2, 1]),
            (5, 6, 5, 3, 3, 1, [2, 0, 0, 2]),
            // Rows wide enough for the vector path (AVX-512's 16 lanes too), stride 1 and 2, its border columns.
            (3, 20, 37, 3, 1, 1, [1, 1, 1, 1]), (3, 19, 41, 3, 2, 1, [1, 1, 1, 1]), (2, 12, 45, 5, 2, 1, [2, 2, 2, 2]),
            (2, 9, 50, 7, 1, 1, [3, 0, 3, 2]), (2, 6, 70, 3, 2, 1, [0, 0, 0, 0]),
        ] as [(Int, Int, Int, Int, Int, Int, [Int])], ["NHWC", "NCHW"])
    func matches(_ shape: (Int, Int, Int, Int, Int, Int, [Int]), layout: String) async throws {
        let (c, h, w, k, stride, dilation, pads) = shape
        let outH = (h + pads[0] + pads[2] - dilation * (k - 1) - 1) / stride + 1
        let outW = (w + pads[1] + pads[3] - dilation * (k - 1) - 1) / stride + 1
        var random = SeededGenerator(state: UInt64(c * 7919 + h * 104_729 + w * 31 + k))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (x, weights, bias) = (values(c * h * w), values(c * k * k), values(c))
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec(
                        "Conv", ["x", "w", "b"], ["y"], name: "dw",
                        [
                            ("group", .int(c)), ("kernel_shape", .ints([k, k])), ("strides", .ints([stride, stride])),
                            ("dilations", .ints([dilation, dilation])), ("pads", .ints(pads)),
                        ])
                ],
                inputs: [ValueSpec("x", ElemType.float, [1, .value(c), .value(h), .value(w)])],
                outputs: [ValueSpec("y", ElemType.float, [1, .value(c), .value(outH), .value(outW)])],
                initializers: [.float("w", [c, 1, k, k], weights), .float("b", [c], bias)]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: layout), in: directory)
        #expect(result.manifest.opCountsAfter[layout == "NHWC" ? "kiln::DepthwiseConvNHWC" : "Conv"] == 1)
        let y = floats(try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])[0])
        #expect(y.count == c * outH * outW)
        for channel in 0..<c {
            for oh in 0..<outH {
                for ow in 0..<outW {
                    var sum = Double(bias[channel])
                    for kh in 0..<k {
                        for kw in 0..<k {
                            let ih = oh * stride + kh * dilation - pads[0]
                            let iw = ow * stride + kw * dilation - pads[1]
                            guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                            sum += Double(x[(channel * h + ih) * w + iw]) * Double(weights[(channel * k + kh) * k + kw])
                        }
                    }
                    let got = Double(y[(channel * outH + oh) * outW + ow])
                    #expect(abs(got - sum) <= 1e-5 * max(1, abs(sum)), "y[\(channel),\(oh),\(ow)] = \(got), not \(sum)")
                }
            }
        }
    }
}

@Suite("graph passes")
struct PassTests {
    /// Conv(x: [1,2,5,5], W: [3,2,3,3], pad 1) followed by BatchNormalization; `exposeConv` also makes the
    /// Conv's output a graph output, which must keep the two apart.
    static func model(exposeConv: Bool, w: [Float], bn: [[Float]]) -> ModelSpec {
        ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "w", "b"], ["c"], name: "conv", [("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec(
                        "BatchNormalization", ["c", "g", "beta", "m", "v"], ["y"], name: "bn",
                        [("epsilon", .float(1e-3))]),
                ],
                inputs: [ValueSpec("x", ElemType.float, [1, 2, 5, 5])],
                outputs: [ValueSpec("y", ElemType.float, [1, 3, 5, 5])]
                    + (exposeConv ? [ValueSpec("c", ElemType.float, [1, 3, 5, 5])] : []),
                initializers: [
                    .float("w", [3, 2, 3, 3], w), .float("b", [3], [0.1, -0.2, 0.3]), .float("g", [3], bn[0]),
                    .float("beta", [3], bn[1]), .float("m", [3], bn[2]), .float("v", [3], bn[3]),
                ]))
    }

    @Test(
        "BatchNormalization after a Conv folds into it, says so in the manifest, and computes the same",
        arguments: [false, true])
    func foldBatchNormalization(exposeConv: Bool) async throws {
        var random = SeededGenerator(state: 42)
        func values(_ count: Int, _ range: ClosedRange<Float>) -> [Float] {
            (0..<count).map { _ in Float.random(in: range, using: &random) }
        }
        let (x, w) = (values(50, -1...1), values(54, -1...1))
        let bn = [values(3, 0.5...1.5), values(3, -1...1), values(3, -1...1), values(3, 0.1...2)]
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.model(exposeConv: exposeConv, w: w, bn: bn), in: directory)
        #expect(
            result.manifest.passesApplied
                == (exposeConv ? [] : ["fold-batch-normalization: 1"]) + ["channels-last: 1"])
        #expect((result.manifest.opCountsAfter["BatchNormalization"] ?? 0) == (exposeConv ? 1 : 0))
        let y = floats(try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x)])[0])
        let bias: [Double] = [0.1, -0.2, 0.3]
        for o in 0..<3 {
            for i in 0..<5 {
                for j in 0..<5 {
                    var sum = bias[o]
                    for c in 0..<2 {
                        for ki in 0..<3 {
                            for kj in 0..<3 where (0..<5).contains(i + ki - 1) && (0..<5).contains(j + kj - 1) {
                                sum +=
                                    Double(x[(c * 5 + i + ki - 1) * 5 + j + kj - 1])
                                    * Double(w[((o * 2 + c) * 3 + ki) * 3 + kj])
                            }
                        }
                    }
                    let normalized =
                        Double(bn[0][o]) * (sum - Double(bn[2][o])) / (Double(bn[3][o]) + 1e-3).squareRoot()
                        + Double(bn[1][o])
                    let got = Double(y[(o * 5 + i) * 5 + j])
                    #expect(abs(got - normalized) <= 1e-5 * max(1, abs(normalized)), "y[\(o),\(i),\(j)]")
                }
            }
        }
    }
}

extension PassTests {
    /// x [1,4,7,9] → Conv 3x3 (12 channels: the packed GEMM, three full column panels and a tail) → Add(r, ·)
    /// → Relu → a; a → depthwise Conv → Clip(-0.5, 0.5) → y1; a → 1x1 Conv to 3 channels (the few-rows GEMM)
    /// → Relu → y2.
    static func epilogueModel(_ values: (Int) -> [Float]) -> (ModelSpec, [String: [Float]]) {
        let weights = [
            "w1": values(12 * 4 * 9), "b1": values(12), "w2": values(12 * 9), "b2": values(12), "w3": values(3 * 12),
        ]
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "w1", "b1"], ["c1"], name: "c1", [("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Add", ["r", "c1"], ["s"], name: "add"),
                    NodeSpec("Relu", ["s"], ["a"], name: "relu"),
                    NodeSpec(
                        "Conv", ["a", "w2", "b2"], ["d"], name: "dw",
                        [("group", .int(12)), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Clip", ["d", "lo", "hi"], ["y1"], name: "clip"),
                    NodeSpec("Conv", ["a", "w3"], ["e"], name: "pw"),
                    NodeSpec("Relu", ["e"], ["y2"], name: "relu2"),
                ],
                inputs: [
                    ValueSpec("x", ElemType.float, [1, 4, 7, 9]), ValueSpec("r", ElemType.float, [1, 12, 7, 9]),
                ],
                outputs: [
                    ValueSpec("y1", ElemType.float, [1, 12, 7, 9]), ValueSpec("y2", ElemType.float, [1, 3, 7, 9]),
                ],
                initializers: [
                    .float("w1", [12, 4, 3, 3], weights["w1"]!), .float("b1", [12], weights["b1"]!),
                    .float("w2", [12, 1, 3, 3], weights["w2"]!), .float("b2", [12], weights["b2"]!),
                    .float("w3", [3, 12, 1, 1], weights["w3"]!), .float("lo", [], [-0.5]), .float("hi", [], [0.5]),
                ]))
        return (model, weights)
    }

    /// Direct convolution over [channels, 7, 9] planes with pad `pad`, in doubles.
    static func convolve(
        _ x: [Double], channels: Int, _ w: [Float], _ b: [Float]?, out: Int, kernel: Int, depthwise: Bool
    ) -> [Double] {
        let (h, wd, pad) = (7, 9, kernel / 2)
        var y = [Double](repeating: 0, count: out * h * wd)
        for o in 0..<out {
            for i in 0..<h {
                for j in 0..<wd {
                    var sum = b.map { Double($0[o]) } ?? 0
                    for c in (depthwise ? o..<o + 1 : 0..<channels) {
                        for ki in 0..<kernel {
                            for kj in 0..<kernel where (0..<h).contains(i + ki - pad) && (0..<wd).contains(j + kj - pad)
                            {
                                let weight = w[
                                    ((o * (depthwise ? 1 : channels) + (depthwise ? 0 : c)) * kernel + ki) * kernel + kj
                                ]
                                sum += x[(c * h + i + ki - pad) * wd + j + kj - pad] * Double(weight)
                            }
                        }
                    }
                    y[(o * h + i) * wd + j] = sum
                }
            }
        }
        return y
    }

    @Test(
        "Add, Relu and Clip after Convs fuse into their stores (GEMM, few-rows GEMM, depthwise) and compute the same",
        arguments: ["NHWC", "NCHW"])
    func fuseConvEpilogue(layout: String) async throws {
        var random = SeededGenerator(state: 7)
        let (model, weights) = Self.epilogueModel { count in
            (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
        }
        let x = (0..<4 * 63).map { _ in Float.random(in: -1...1, using: &random) }
        let r = (0..<12 * 63).map { _ in Float.random(in: -1...1, using: &random) }
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: layout), in: directory)
        if layout == "NCHW" {
            #expect(result.manifest.passesApplied == ["fuse-conv-epilogue: 4"])
            #expect(result.manifest.opCountsAfter == ["kiln::FusedConv": 3])
        } else {
            // Two inputs go to NHWC and two outputs come back; nothing in between is transposed.
            #expect(result.manifest.passesApplied == ["fuse-conv-epilogue: 4", "channels-last: 3"])
            #expect(
                result.manifest.opCountsAfter == ["kiln::ConvNHWC": 2, "kiln::DepthwiseConvNHWC": 1, "Transpose": 4])
        }
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run([bytes(x), bytes(r)])
        let c1 = Self.convolve(
            x.map(Double.init), channels: 4, weights["w1"]!, weights["b1"]!, out: 12, kernel: 3, depthwise: false)
        let a = zip(c1, r).map { max(0, $0 + Double($1)) }
        let y1 = Self.convolve(a, channels: 12, weights["w2"]!, weights["b2"]!, out: 12, kernel: 3, depthwise: true)
            .map { min(0.5, max(-0.5, $0)) }
        let y2 = Self.convolve(a, channels: 12, weights["w3"]!, nil, out: 3, kernel: 1, depthwise: false).map {
            max(0, $0)
        }
        for (name, got, expected) in [("y1", floats(outputs[0]), y1), ("y2", floats(outputs[1]), y2)] {
            #expect(got.count == expected.count)
            for (index, (value, reference)) in zip(got, expected).enumerated() {
                #expect(abs(Double(value) - reference) <= 1e-5 * max(1, abs(reference)), "\(name)[\(index)]")
            }
        }
    }

    @Test("kiln bench --profile's source: a label and a time for every step, the fused ones by their new name")
    func profile() async throws {
        var random = SeededGenerator(state: 8)
        let (model, _) = Self.epilogueModel { count in (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
        }
        let directory = try TemporaryDirectory()
        let path = try #require(try await compile(model, in: directory).artifactPath)
        let artifact = try OpenedArtifact(path: path).loaded
        let steps = try artifact.profile(
            [Data(count: 4 * 63 * 4), Data(count: 12 * 63 * 4)], warmup: 1, warmupSeconds: 0, iterations: 3)
        #expect(
            steps.map(\.label) == [
                "Transpose 'x/to_nhwc' float32[1,7,9,4]", "Transpose 'r/to_nhwc' float32[1,7,9,12]",
                "kiln::ConvNHWC 'c1' float32[1,7,9,12]", "kiln::DepthwiseConvNHWC 'dw' float32[1,7,9,12]",
                "kiln::ConvNHWC 'pw' float32[1,7,9,3]", "Transpose 'y1/to_nchw' float32[1,12,7,9]",
                "Transpose 'y2/to_nchw' float32[1,3,7,9]", "(copy outputs)",
            ])
        #expect(steps.allSatisfy { $0.milliseconds >= 0 })
        #expect(steps[2].milliseconds > 0, "the 3x3 convolution takes measurable time")
    }
}

extension PassTests {
    @Test(
        "a fused Conv on a 7x7 map (NCHW: its product split by rows) gives the same bytes on 1, 2 and 3 threads",
        arguments: ["NHWC", "NCHW"])
    func fusedSmallMapThreads(layout: String) async throws {
        var random = SeededGenerator(state: 9)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let (c, k) = (128, 96)
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "w", "b"], ["c"], name: "conv", [("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Add", ["c", "r"], ["s"], name: "add"),
                    NodeSpec("Relu", ["s"], ["y"], name: "relu"),
                ],
                inputs: [
                    ValueSpec("x", ElemType.float, [1, .value(c), 7, 7]),
                    ValueSpec("r", ElemType.float, [1, .value(k), 7, 7]),
                ],
                outputs: [ValueSpec("y", ElemType.float, [1, .value(k), 7, 7])],
                initializers: [.float("w", [k, c, 3, 3], values(k * c * 9)), .float("b", [k], values(k))]))
        let directory = try TemporaryDirectory()
        let result = try await compile(model, target: native(layout: layout), in: directory)
        #expect(
            result.manifest.passesApplied
                == ["fuse-conv-epilogue: 2"] + (layout == "NHWC" ? ["channels-last: 1"] : []))
        let path = try #require(result.artifactPath)
        let inputs = [bytes(values(c * 49)), bytes(values(k * 49))]
        try expectSameBytesOnThreads(path, inputs)
    }
}

extension PassTests {
    /// SiLU after convolutions, `Mul(c, Sigmoid(c))` either way round: x [1,4,7,9] → Conv 3x3 to 16 channels →
    /// SiLU → a; a → depthwise 3x3 → Add(·, r) → SiLU → y1; a → Conv 3x3 16 → 16 (Winograd in NHWC) → SiLU → y2;
    /// a → Conv 1x1 to 3 channels → SiLU → y3.
    static func siluModel(_ weights: [String: [Float]]) -> ModelSpec {
        var nodes: [NodeSpec] = []
        func silu(_ c: String, _ y: String, sigmoidFirst: Bool) {
            nodes.append(NodeSpec("Sigmoid", [c], ["\(y)s"], name: "\(y)s"))
            nodes.append(NodeSpec("Mul", sigmoidFirst ? ["\(y)s", c] : [c, "\(y)s"], [y], name: y))
        }
        nodes.append(NodeSpec("Conv", ["x", "w1", "b1"], ["c1"], name: "c1", [("pads", .ints([1, 1, 1, 1]))]))
        silu("c1", "a", sigmoidFirst: false)
        nodes.append(
            NodeSpec(
                "Conv", ["a", "w2", "b2"], ["d"], name: "d", [("group", .int(16)), ("pads", .ints([1, 1, 1, 1]))]))
        nodes.append(NodeSpec("Add", ["d", "r"], ["e"], name: "e"))
        silu("e", "y1", sigmoidFirst: true)
        nodes.append(NodeSpec("Conv", ["a", "w3", "b3"], ["f"], name: "f", [("pads", .ints([1, 1, 1, 1]))]))
        silu("f", "y2", sigmoidFirst: false)
        nodes.append(NodeSpec("Conv", ["a", "w4"], ["g"], name: "g"))
        silu("g", "y3", sigmoidFirst: true)
        return ModelSpec(
            graph: GraphSpec(
                nodes: nodes,
                inputs: [
                    ValueSpec("x", ElemType.float, [1, 4, 7, 9]), ValueSpec("r", ElemType.float, [1, 16, 7, 9]),
                ],
                outputs: [
                    ValueSpec("y1", ElemType.float, [1, 16, 7, 9]), ValueSpec("y2", ElemType.float, [1, 16, 7, 9]),
                    ValueSpec("y3", ElemType.float, [1, 3, 7, 9]),
                ],
                initializers: [
                    .float("w1", [16, 4, 3, 3], weights["w1"]!), .float("b1", [16], weights["b1"]!),
                    .float("w2", [16, 1, 3, 3], weights["w2"]!), .float("b2", [16], weights["b2"]!),
                    .float("w3", [16, 16, 3, 3], weights["w3"]!), .float("b3", [16], weights["b3"]!),
                    .float("w4", [3, 16, 1, 1], weights["w4"]!),
                ]))
    }

    @Test(
        "SiLU after Convs goes into their stores (GEMM, depthwise with a residual, Winograd, 1x1) in either layout",
        arguments: [("NHWC", "native"), ("NHWC", "haswell"), ("NCHW", "native")])
    func fuseSiLU(layout: String, mcpu: String) async throws {
        var random = SeededGenerator(state: 12)
        func values(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
            (0..<count).map { _ in Float.random(in: range, using: &random) }
        }
        let weights = [
            "w1": values(16 * 36), "b1": values(16), "w2": values(16 * 9), "b2": values(16), "w3": values(16 * 144),
            "b3": values(16), "w4": values(3 * 16),
        ]
        // Inputs up to ±30 drive the first SiLU through both tails of the sigmoid.
        let (x, r) = (values(4 * 63, -30...30), values(16 * 63))
        let directory = try TemporaryDirectory()
        let result = try await compile(
            Self.siluModel(weights), target: native(layout: layout, mcpu: mcpu), in: directory)
        if layout == "NCHW" {
            #expect(result.manifest.passesApplied == ["fuse-conv-epilogue: 5"])
            #expect(result.manifest.opCountsAfter == ["kiln::FusedConv": 4])
        } else {
            #expect(result.manifest.passesApplied == ["fuse-conv-epilogue: 5", "channels-last: 4"])
            #expect(
                result.manifest.opCountsAfter == [
                    "kiln::ConvNHWC": 2, "kiln::DepthwiseConvNHWC": 1, "kiln::WinogradConvNHWC": 1, "Transpose": 5,
                ])
        }
        let path = try #require(result.artifactPath)
        let outputs = try OpenedArtifact(path: path).loaded.run([bytes(x), bytes(r)]).map(floats)
        func silu(_ v: Double) -> Double { v / (1 + exp(-v)) }
        let a = Self.convolve(
            x.map(Double.init), channels: 4, weights["w1"]!, weights["b1"]!, out: 16, kernel: 3, depthwise: false
        )
        .map(silu)
        let y1 = zip(
            Self.convolve(a, channels: 16, weights["w2"]!, weights["b2"]!, out: 16, kernel: 3, depthwise: true), r
        ).map { silu($0 + Double($1)) }
        let y2 = Self.convolve(a, channels: 16, weights["w3"]!, weights["b3"]!, out: 16, kernel: 3, depthwise: false)
            .map(silu)
        let y3 = Self.convolve(a, channels: 16, weights["w4"]!, nil, out: 3, kernel: 1, depthwise: false).map(silu)
        for (index, (name, expected)) in [("y1", y1), ("y2", y2), ("y3", y3)].enumerated() {
            expectClose(outputs[index], expected.map { Float($0) }, name)
        }
        try expectSameBytesOnThreads(path, [bytes(x), bytes(r)])
    }
}
