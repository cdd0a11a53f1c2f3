import Foundation
import Pipeline
import Runtime
import TestSupport
import Testing

@Suite("the channels-last layout")
struct ChannelsLastTests {
    /// x [1,3,23,19] through every kind of node the pass rewrites or must leave alone: a strided 5x5 Conv with
    /// asymmetric pads, 3 input channels (whole kernel rows as one stretch) and 40 output channels (a full
    /// weight panel and a partial one), then Relu; MaxPool with ceil_mode; a dilated 3x3 Conv whose residual
    /// Add is its own input; a depthwise Conv of 40 channels with a residual too; Mul by a scalar constant;
    /// Concat of the channels; a depthwise Conv of the 80 (wide enough for its widest vector block) with a
    /// residual; AveragePool counting its padding; an Add broadcasting an [80,1,1] constant (stays NCHW); a
    /// 1x1 Conv to 7 channels (also a graph output); GlobalAveragePool; Flatten. Beside them, off x: a 17x17
    /// Conv (289 taps, more than the NHWC kernels take) that stays NCHW, and an unpadded dilated Conv, whose
    /// inner tiles lie wholly inside the input, where a tap's channels are contiguous but a kernel row's are not.
    /// Off r1, two 3x3 stride-1 Convs run by Winograd: 40 input channels to 20 (neither a whole number of
    /// vectors) on an 11 x 8 map (half tiles at the bottom), then 20 to 20 with its residual Add and Relu.
    /// `batch` images at once.
    static func model(batch n: Int, _ values: (Int) -> [Float]) -> ModelSpec {
        ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec(
                        "Conv", ["x", "w1", "b1"], ["c1"], name: "c1",
                        [("strides", .ints([2, 2])), ("pads", .ints([2, 1, 1, 2]))]),
                    NodeSpec("Relu", ["c1"], ["r1"], name: "r1"),
                    NodeSpec("Conv", ["r1", "w8", "b8"], ["q1"], name: "q1", [("pads", .ints([1, 1, 1, 0]))]),
                    NodeSpec("Conv", ["q1", "w9"], ["q2"], name: "q2", [("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Add", ["q2", "q1"], ["q3"], name: "q3"),
                    NodeSpec("Relu", ["q3"], ["wino"], name: "wino"),
                    NodeSpec(
                        "MaxPool", ["r1"], ["p1"], name: "p1",
                        [
                            ("kernel_shape", .ints([3, 3])), ("strides", .ints([2, 2])),
                            ("pads", .ints([1, 1, 1, 1])), ("ceil_mode", .int(1)),
                        ]),
                    NodeSpec(
                        "Conv", ["p1", "w2"], ["c2"], name: "c2",
                        [("dilations", .ints([2, 2])), ("pads", .ints([2, 2, 2, 2]))]),
                    NodeSpec("Add", ["c2", "p1"], ["s"], name: "s"),
                    NodeSpec(
                        "Conv", ["s", "w3", "b3"], ["dc"], name: "dw",
                        [("group", .int(40)), ("pads", .ints([1, 1, 1, 1]))]
                    ),
                    NodeSpec("Add", ["dc", "s"], ["d"], name: "d"),
                    NodeSpec("Mul", ["d", "half"], ["m"], name: "m"),
                    NodeSpec("Concat", ["m", "s"], ["cat"], name: "cat", [("axis", .int(1))]),
                    NodeSpec(
                        "Conv", ["cat", "w6"], ["dc2"], name: "dw2",
                        [("group", .int(80)), ("pads", .ints([1, 1, 1, 1]))]
                    ),
                    NodeSpec("Add", ["dc2", "cat"], ["d2"], name: "d2"),
                    NodeSpec(
                        "AveragePool", ["d2"], ["ap"], name: "ap",
                        [
                            ("kernel_shape", .ints([2, 2])), ("pads", .ints([0, 0, 1, 1])),
                            ("count_include_pad", .int(1)),
                        ]),
                    NodeSpec("Add", ["ap", "shift"], ["ab"], name: "ab"),
                    NodeSpec("Conv", ["ab", "w4", "b4"], ["c4"], name: "c4"),
                    NodeSpec("GlobalAveragePool", ["c4"], ["g"], name: "g"),
                    NodeSpec("Flatten", ["g"], ["f"], name: "f"),
                    NodeSpec("Conv", ["x", "w5"], ["big"], name: "big", [("pads", .ints([8, 8, 8, 8]))]),
                    NodeSpec("Conv", ["x", "w7"], ["dilated"], name: "dilated", [("dilations", .ints([2, 2]))]),
                ],
                inputs: [ValueSpec("x", ElemType.float, [.value(n), 3, 23, 19])],
                outputs: [
                    ValueSpec("f", ElemType.float, [.value(n), 7]),
                    ValueSpec("c4", ElemType.float, [.value(n), 7, 6, 5]),
                    ValueSpec("big", ElemType.float, [.value(n), 2, 23, 19]),
                    ValueSpec("dilated", ElemType.float, [.value(n), 8, 19, 15]),
                    ValueSpec("wino", ElemType.float, [.value(n), 20, 11, 8]),
                ],
                initializers: [
                    .float("w1", [40, 3, 5, 5], values(40 * 3 * 25)), .float("b1", [40], values(40)),
                    .float("w2", [40, 40, 3, 3], values(40 * 40 * 9)), .float("w3", [40, 1, 3, 3], values(40 * 9)),
                    .float("b3", [40], values(40)), .float("half", [], [0.5]), .float("shift", [80, 1, 1], values(80)),
                    .float("w4", [7, 80, 1, 1], values(7 * 80)), .float("b4", [7], values(7)),
                    .float("w5", [2, 3, 17, 17], values(2 * 3 * 289)), .float("w6", [80, 1, 3, 3], values(80 * 9)),
                    .float("w7", [8, 3, 3, 3], values(8 * 27)), .float("w8", [20, 40, 3, 3], values(20 * 40 * 9)),
                    .float("b8", [20], values(20)), .float("w9", [20, 20, 3, 3], values(20 * 20 * 9)),
                ]))
    }

    @Test(
        "gives the model's own results, rewriting every node it can and transposing only where NCHW is needed",
        arguments: [(1, "native"), (2, "native"), (1, "haswell")])
    func sameAsNCHW(batch: Int, mcpu: String) async throws {
        var random = SeededGenerator(state: 11)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let model = Self.model(batch: batch, values)
        let x = bytes(values(batch * 3 * 23 * 19))
        // Two directories: both artifacts would have the same name.
        let (first, second) = (try TemporaryDirectory(), try TemporaryDirectory())
        // haswell: the AVX2 kernels (8 lanes: other whole and partial vectors than AVX-512's 16) on this machine.
        let nhwc = try await compile(model, target: native(layout: "NHWC", mcpu: mcpu), in: first)
        // c1, q1 and q2 (its Add and Relu fused), the MaxPool, c2 and the two depthwise Convs (their Adds
        // fused), the AveragePool, c4, the GlobalAveragePool and the dilated Conv.
        #expect(nhwc.manifest.passesApplied == ["fuse-conv-epilogue: 6", "channels-last: 11"])
        #expect(nhwc.manifest.opCountsAfter["kiln::WinogradConvNHWC"] == 2)
        // x in; ap out for the broadcasting Add and ab back in; c4 out (a graph output); g out for Flatten;
        // the dilated Conv's output and wino.
        #expect(nhwc.manifest.opCountsAfter["Transpose"] == 7)
        #expect(nhwc.manifest.opCountsAfter["Conv"] == 1, "the 17x17 Conv stays NCHW")
        #expect(nhwc.manifest.opCountsAfter["Concat"] == 1)
        let nchw = try await compile(model, target: native(layout: "NCHW"), in: second)
        #expect(nhwc.artifactPath != nchw.artifactPath)
        #expect(nchw.manifest.passesApplied == ["fuse-conv-epilogue: 6"])
        let got = try OpenedArtifact(path: try #require(nhwc.artifactPath)).loaded.run([x])
        let expected = try OpenedArtifact(path: try #require(nchw.artifactPath)).loaded.run([x])
        #expect(got.count == 5)
        for (name, (a, b)) in zip(["f", "c4", "big", "dilated", "wino"], zip(got, expected)) {
            expectClose(floats(a), floats(b), name)
        }
        try expectSameBytesOnThreads(try #require(nhwc.artifactPath), [x])
    }

    /// x [1,48,7,9] → a padded 3x3 Conv to 32 channels: its transformed weights (16 · 48 · 32 floats, 96 KiB) fit
    /// in four times an L2 of 32 KiB but not of 16, so it runs by Winograd for the one and directly for the other.
    @Test("runs a 3x3 convolution by Winograd only where its transformed weights fit in four times the L2")
    func winogradByCache() async throws {
        var random = SeededGenerator(state: 7)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [NodeSpec("Conv", ["x", "w"], ["y"], name: "c", [("pads", .ints([1, 1, 1, 1]))])],
                inputs: [ValueSpec("x", ElemType.float, [1, 48, 7, 9])],
                outputs: [ValueSpec("y", ElemType.float, [1, 32, 7, 9])],
                initializers: [.float("w", [32, 48, 3, 3], values(32 * 48 * 9))]))
        let x = bytes(values(48 * 7 * 9))
        let directories = (try TemporaryDirectory(), try TemporaryDirectory(), try TemporaryDirectory())
        let small = try await compile(model, target: native(layout: "NHWC", l2CacheKiB: 16), in: directories.0)
        #expect(small.manifest.opCountsAfter["kiln::ConvNHWC"] == 1)
        #expect(small.manifest.opCountsAfter["kiln::WinogradConvNHWC"] == nil)
        let large = try await compile(model, target: native(layout: "NHWC", l2CacheKiB: 32), in: directories.1)
        #expect(large.manifest.opCountsAfter["kiln::WinogradConvNHWC"] == 1)
        let nchw = try await compile(model, target: native(layout: "NCHW"), in: directories.2)
        let expected = floats(try OpenedArtifact(path: try #require(nchw.artifactPath)).loaded.run([x])[0])
        for (label, compiled) in [("direct", small), ("Winograd", large)] {
            expectClose(
                floats(try OpenedArtifact(path: try #require(compiled.artifactPath)).loaded.run([x])[0]), expected,
                label)
        }
    }

    /// x [2,1024,9,9] → a 1x1 Conv to 1600 channels with bias and Relu: 6.25 MiB of weights, past the size at
    /// which conv_nhwc.c takes its tiles in groups (KK_NHWC_GROUP_WEIGHT_BYTES), here 2 groups per image of 81
    /// pixels (10 tiles whose inputs fit in KK_NHWC_GROUP_BYTES, then the last 4), and 1600 = 50 whole panels.
    @Test("a convolution whose weights do not fit in L2 takes its tiles in groups and gives the same results")
    func groupedTiles() async throws {
        var random = SeededGenerator(state: 5)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "w", "b"], ["c"], name: "c"),
                    NodeSpec("Relu", ["c"], ["y"], name: "y"),
                ],
                inputs: [ValueSpec("x", ElemType.float, [2, 1024, 9, 9])],
                outputs: [ValueSpec("y", ElemType.float, [2, 1600, 9, 9])],
                initializers: [
                    .float("w", [1600, 1024, 1, 1], values(1600 * 1024)), .float("b", [1600], values(1600)),
                ]
            ))
        let x = bytes(values(2 * 1024 * 81))
        let (first, second) = (try TemporaryDirectory(), try TemporaryDirectory())
        let nhwc = try await compile(model, target: native(layout: "NHWC"), in: first)
        #expect(nhwc.manifest.opCountsAfter["kiln::ConvNHWC"] == 1)
        let nchw = try await compile(model, target: native(layout: "NCHW"), in: second)
        let got = floats(try OpenedArtifact(path: try #require(nhwc.artifactPath)).loaded.run([x])[0])
        let expected = floats(try OpenedArtifact(path: try #require(nchw.artifactPath)).loaded.run([x])[0])
        #expect(got.count == 2 * 1600 * 81)
        expectClose(got, expected)
        try expectSameBytesOnThreads(try #require(nhwc.artifactPath), [x])
    }

    /// Three inverted-residual shapes on x [n,8,30,64], each a 1x1 Conv whose only reader is a depthwise Conv
    /// and whose output is larger than L2: 8 → 96 with Relu6, then 3x3 stride 1 with Relu6 (a: a graph output);
    /// from a, 96 → 72, then 3x3 stride 2 with a residual Add of the input r, then the projection, a 1x1 Conv
    /// 72 → 24 with bias, residual q and Relu; from a, 96 → 72, then 3x3 with dilation 2. And one that stays two
    /// nodes: from a, 96 → 8 (its 61 KiB output fits in L2), then 3x3. A row of the 96-wide tensor is 24 KiB, so
    /// a band holds a few rows: 5 bands per image at stride 1, their shared rows carried.
    @Test(
        "fuses a 1x1 convolution into the depthwise one that alone reads its large output, with the same results",
        arguments: [1, 2])
    func expandDepthwise(batch n: Int) async throws {
        var random = SeededGenerator(state: 23)
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &random) } }
        let model = ModelSpec(
            graph: GraphSpec(
                nodes: [
                    NodeSpec("Conv", ["x", "we1", "be1"], ["e1"], name: "e1"),
                    NodeSpec("Clip", ["e1", "lo", "hi"], ["e1c"], name: "e1c"),
                    NodeSpec(
                        "Conv", ["e1c", "wd1", "bd1"], ["d1"], name: "d1",
                        [("group", .int(96)), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Clip", ["d1", "lo", "hi"], ["a"], name: "a"),
                    NodeSpec("Conv", ["a", "we2", "be2"], ["e2"], name: "e2"),
                    NodeSpec(
                        "Conv", ["e2", "wd2", "bd2"], ["d2"], name: "d2",
                        [("group", .int(72)), ("strides", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Add", ["d2", "r"], ["y2"], name: "y2"),
                    NodeSpec("Conv", ["y2", "wp", "bp"], ["p"], name: "p"),
                    NodeSpec("Add", ["p", "q"], ["pq"], name: "pq"),
                    NodeSpec("Relu", ["pq"], ["y4"], name: "y4"),
                    NodeSpec("Conv", ["a", "we4"], ["e4"], name: "e4"),
                    NodeSpec(
                        "Conv", ["e4", "wd4"], ["y5"], name: "y5", [("group", .int(8)), ("pads", .ints([1, 1, 1, 1]))]),
                    NodeSpec("Conv", ["a", "we3"], ["e3"], name: "e3"),
                    NodeSpec(
                        "Conv", ["e3", "wd3"], ["y3"], name: "y3",
                        [("group", .int(72)), ("dilations", .ints([2, 2])), ("pads", .ints([2, 2, 2, 2]))]),
                ],
                inputs: [
                    ValueSpec("x", ElemType.float, [.value(n), 8, 30, 64]),
                    ValueSpec("r", ElemType.float, [.value(n), 72, 15, 32]),
                    ValueSpec("q", ElemType.float, [.value(n), 24, 15, 32]),
                ],
                outputs: [
                    ValueSpec("a", ElemType.float, [.value(n), 96, 30, 64]),
                    ValueSpec("y4", ElemType.float, [.value(n), 24, 15, 32]),
                    ValueSpec("y3", ElemType.float, [.value(n), 72, 30, 64]),
                    ValueSpec("y5", ElemType.float, [.value(n), 8, 30, 64]),
                ],
                initializers: [
                    .float("we1", [96, 8, 1, 1], values(96 * 8)), .float("be1", [96], values(96)),
                    .float("wd1", [96, 1, 3, 3], values(96 * 9)), .float("bd1", [96], values(96)),
                    .float("we2", [72, 96, 1, 1], values(72 * 96)), .float("be2", [72], values(72)),
                    .float("wd2", [72, 1, 3, 3], values(72 * 9)), .float("bd2", [72], values(72)),
                    .float("we3", [72, 96, 1, 1], values(72 * 96)), .float("wd3", [72, 1, 3, 3], values(72 * 9)),
                    .float("we4", [8, 96, 1, 1], values(8 * 96)), .float("wd4", [8, 1, 3, 3], values(8 * 9)),
                    .float("lo", [], [0]), .float("hi", [], [6]), .float("wp", [24, 72, 1, 1], values(24 * 72)),
                    .float("bp", [24], values(24)),
                ]))
        let inputs = [
            bytes(values(n * 8 * 30 * 64)), bytes(values(n * 72 * 15 * 32)), bytes(values(n * 24 * 15 * 32)),
        ]
        let (first, second) = (try TemporaryDirectory(), try TemporaryDirectory())
        let nhwc = try await compile(model, target: native(layout: "NHWC"), in: first)
        #expect(nhwc.manifest.passesApplied.contains("fuse-expand-depthwise: 4"))
        #expect(nhwc.manifest.opCountsAfter["kiln::ExpandDepthwiseNHWC"] == 3)
        #expect(nhwc.manifest.opCountsAfter["kiln::DepthwiseConvNHWC"] == 1, "e4 and d4: a small wide tensor")
        #expect(nhwc.manifest.opCountsAfter["kiln::ConvNHWC"] == 1, "e4 alone")
        let nchw = try await compile(model, target: native(layout: "NCHW"), in: second)
        let got = try OpenedArtifact(path: try #require(nhwc.artifactPath)).loaded.run(inputs)
        let expected = try OpenedArtifact(path: try #require(nchw.artifactPath)).loaded.run(inputs)
        #expect(got.count == 4)
        for (name, (a, b)) in zip(["a", "y4", "y3", "y5"], zip(got, expected)) {
            expectClose(floats(a), floats(b), name)
        }
        try expectSameBytesOnThreads(try #require(nhwc.artifactPath), inputs)
    }

    @Test("refuses a layout it does not generate, naming the two it does")
    func unknownLayout() async throws {
        let directory = try TemporaryDirectory()
        do {
            _ = try await compile(reluModel(), config: "[[1,4]]", target: native(layout: "NCHWc"), in: directory)
            Issue.record("compiled with layout NCHWc")
        } catch let failure as PipelineFailure {
            #expect(
                failure.failureReason
                    == #"ClientError: TargetDevice: CompilerOptions layout must be "NHWC" (channels last, the default) or "NCHW" (the model's own)"#
            )
        }
    }
}
