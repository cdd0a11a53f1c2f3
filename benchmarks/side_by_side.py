"""The pieces the side-by-side benchmarks (zoo-vs-ort.py, gemm-vs-ort.py) share: ONNX Runtime's median
latency, and compiling and timing with Kiln."""
import json
import subprocess
import time

import onnxruntime as ort


def ort_session(model_bytes, threads):
    """An ONNX Runtime session with all graph optimizations and `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def session_median(session, feeds, warmup, iterations, warmup_seconds=0.0):
    """Median milliseconds of `iterations` runs of `session` after at least `warmup` runs and `warmup_seconds`."""
    start, done = time.perf_counter(), 0
    while done < warmup or time.perf_counter() - start < warmup_seconds:
        session.run(None, feeds)
        done += 1
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return times[len(times) // 2]


def ort_median(model_bytes, feeds, threads, warmup, iterations):
    """Median milliseconds of `iterations` runs after `warmup`, all graph optimizations, `threads` intra-op threads."""
    return session_median(ort_session(model_bytes, threads), feeds, warmup, iterations)


def kiln_compile(kiln, model, out, env, extra=()):
    """`kiln compile` for this CPU (LINUX/X86_64, mcpu native): (artifact path, seconds), or (None, the error line)."""
    start = time.time()
    compiled = subprocess.run(
        [kiln, "compile", "--model", model, "--target-platform", "LINUX/X86_64", "--compiler-options",
         '{"mcpu": "native"}', "--output", out, "--json", *extra], capture_output=True, text=True, env=env)
    seconds = time.time() - start
    if compiled.returncode != 0:
        return None, compiled.stderr.strip().splitlines()[-1]
    return json.loads(compiled.stdout)["artifactPath"], seconds


def kiln_median(kiln, artifact, threads, warmup, iterations, env, warmup_seconds=0.0):
    """Median milliseconds from `kiln bench` (after at least `warmup` runs and `warmup_seconds`)."""
    bench = subprocess.run(
        [kiln, "bench", artifact, "--threads", str(threads), "--warmup", str(warmup), "--warmup-seconds",
         str(warmup_seconds), "--iterations", str(iterations), "--json"], capture_output=True, text=True, env=env,
        check=True)
    return json.loads(bench.stdout)["medianMilliseconds"]
