"""ONNX Runtime's median latency for the side-by-side benchmarks (zoo-vs-ort.py, gemm-vs-ort.py)."""
import time

import onnxruntime as ort


def ort_median(model_bytes, feeds, threads, warmup, iterations):
    """Median milliseconds of `iterations` runs after `warmup`, all graph optimizations, `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2]
