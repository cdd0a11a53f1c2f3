#!/usr/bin/env python3
"""Kiln's SGEMM against ONNX Runtime's (MLAS), side by side in one run: for
each size, a one-node MatMul model (A [m,k] an input, B [k,n] a constant) is
compiled by Kiln for this CPU (TargetPlatform LINUX/X86_64, mcpu native) and
timed with `kiln bench`, then run by ONNX Runtime with the same thread count.
Prints median milliseconds, GFLOP/s, the share of a given per-core peak, and
the ratio Kiln / ORT (below 1 means Kiln is faster). The default sizes are
ResNet-50 convolutions as GEMMs (im2col), square matrices and a classifier head.

Usage: python3 benchmarks/gemm-vs-ort.py [--kiln .build/release/kiln] [--threads 1] [--peak 114] [MxKxN ...]
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import kiln_compile, kiln_median, ort_median  # noqa: E402
SIZES = ["64x576x3136", "256x1152x784", "512x2304x196", "512x512x512", "1024x1024x1024", "1x2048x1000"]


def model(m, k, n, seed):
    rng = np.random.default_rng(seed)
    b = numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), "B")
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "gemm",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])], [b])
    built = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    built.ir_version = 8
    return built, {"A": rng.standard_normal((m, k)).astype(np.float32)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build/release/kiln"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--peak", type=float, default=114.0, help="measured fp32 GFLOP/s of one core (114: the Zen 4 development VM)")
    parser.add_argument("sizes", nargs="*")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-gemm-")
    env = dict(os.environ, KILN_HOME=os.path.join(work, "home"), KILN_NO_AUTOSTART="1")
    print(f"{'m x k x n':<16} {'kiln ms':>9} {'GFLOP/s':>8} {'% peak':>7} {'ort ms':>9} {'GFLOP/s':>8} {'kiln/ort':>9}")
    for index, size in enumerate(args.sizes or SIZES):
        m, k, n = (int(part) for part in size.split("x"))
        built, feeds = model(m, k, n, index)
        path = os.path.join(work, f"gemm-{size}.onnx")
        onnx.save(built, path)
        artifact, failure = kiln_compile(args.kiln, path, os.path.join(work, size), env)
        if artifact is None:
            print(f"{size:<16} compile failed: {failure}")
            continue
        kiln_ms = kiln_median(args.kiln, artifact, args.threads, args.warmup, args.iterations, env)
        ort_ms = ort_median(built.SerializeToString(), feeds, args.threads, args.warmup, args.iterations)
        flops = 2.0 * m * k * n
        kiln_rate, ort_rate = flops / kiln_ms / 1e6, flops / ort_ms / 1e6
        share = 100 * kiln_rate / (args.peak * args.threads)
        print(f"{size:<16} {kiln_ms:>9.3f} {kiln_rate:>8.1f} {share:>6.0f}% {ort_ms:>9.3f} {ort_rate:>8.1f} "
              f"{kiln_ms / ort_ms:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
