#!/usr/bin/env python3
"""Kiln against ONNX Runtime on the zoo models (models/make_zoo.py), side by
side in one run on this machine: each model compiled by Kiln for this CPU
(TargetPlatform LINUX/X86_64, mcpu native) and timed with `kiln bench`, and
run by ONNX Runtime (all graph optimizations, the same thread count) on the
same inputs. The two alternate in --rounds rounds of --iterations runs each,
so that the machine's drift (this VM is shared) hits both alike. Prints the
median over the rounds of each one's median latency, the ratio Kiln / ORT
(below 1 means Kiln is faster) and the lowest and highest ratio of a single
round. Also times each compile.

Usage: python3 benchmarks/zoo-vs-ort.py [--kiln .build/release/kiln] [--threads 1] [--iterations 20]
                                        [--rounds 3] [--warmup-seconds 0.3] [model ...]
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import statistics  # noqa: E402

from side_by_side import kiln_compile, kiln_median, ort_session, session_median  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "models"))
from make_zoo import MODELS, SHAPES, ZOO  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build/release/kiln"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    # Each round's `kiln bench` is a new process, whose pool thread Linux takes a while to settle on a CPU of
    # its own (tens of milliseconds here, up to a few hundred in a Swift process), while the ORT session lives
    # through all rounds: both warm up this long before each round's timed runs.
    parser.add_argument("--warmup-seconds", type=float, default=0.3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("models", nargs="*")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-vs-ort-")
    env = dict(os.environ, KILN_HOME=os.path.join(work, "home"), KILN_NO_AUTOSTART="1")
    print(f"{'model':<12} {'compile s':>9} {'kiln ms':>10} {'ort ms':>10} {'kiln/ort':>9} {'per round':>12}")
    for name in args.models or MODELS:
        directory = os.path.join(ZOO, name)
        archive = os.path.join(directory, "model.tar.gz")
        if not os.path.exists(archive):
            subprocess.run([sys.executable, os.path.join(ROOT, "models", "make_zoo.py"), name], check=True)
        with tarfile.open(archive) as tar:
            model_bytes = tar.extractfile("model.onnx").read()
        inputs = {f[len("input_"):-4]: np.load(os.path.join(directory, f))
                  for f in sorted(os.listdir(directory)) if f.startswith("input_")}
        out = os.path.join(work, name)
        artifact, seconds = kiln_compile(args.kiln, archive, out, env,
                                         ["--data-input-config", json.dumps(SHAPES[name])])
        if artifact is None:
            print(f"{name:<12} compile failed: {seconds}")
            continue
        session = ort_session(model_bytes, args.threads)
        rounds = []
        for _ in range(args.rounds):
            kiln_ms = kiln_median(args.kiln, artifact, args.threads, args.warmup, args.iterations, env,
                                  args.warmup_seconds)
            rounds.append((kiln_ms, session_median(session, inputs, args.warmup, args.iterations,
                                                   args.warmup_seconds)))
        kiln_ms = statistics.median(r[0] for r in rounds)
        ort_ms = statistics.median(r[1] for r in rounds)
        ratios = [r[0] / r[1] for r in rounds]
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{name:<12} {seconds:>9.1f} {kiln_ms:>10.3f} {ort_ms:>10.3f} {kiln_ms / ort_ms:>9.2f} {spread:>12}",
              flush=True)


if __name__ == "__main__":
    main()
