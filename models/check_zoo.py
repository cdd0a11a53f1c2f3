#!/usr/bin/env python3
"""Compiles every zoo model (models/make_zoo.py) with Kiln for ml_c4, ml_c5 and
lambda, runs each artifact on this machine with `kiln run`, and compares with
ONNX Runtime's outputs: max |kiln - ort| / max |ort| must be <= 1e-4.
Prints one line per (model, target) and ends with "N passed, M failed".

Usage: python3 models/check_zoo.py [--kiln .build/release/kiln] [model ...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_zoo import MODELS, SHAPES, ZOO  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=".build/release/kiln")
    parser.add_argument("--targets", default="ml_c4,ml_c5,lambda")
    parser.add_argument("models", nargs="*")
    args = parser.parse_args()
    passed = failed = 0
    work = tempfile.mkdtemp(prefix="kiln-zoo-")
    for name in args.models or MODELS:
        directory = os.path.join(ZOO, name)
        if not os.path.exists(os.path.join(directory, "model.tar.gz")):
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "make_zoo.py"), name], check=True)
        inputs = [f for f in sorted(os.listdir(directory)) if f.startswith("input_")]
        expected = {f[len("expected_"):-4]: np.load(os.path.join(directory, f))
                    for f in os.listdir(directory) if f.startswith("expected_")}
        for target in args.targets.split(","):
            out = os.path.join(work, name, target)
            start = time.time()
            compiled = subprocess.run([args.kiln, "compile", "--model", os.path.join(directory, "model.tar.gz"),
                                       "--data-input-config", json.dumps(SHAPES[name]), "--target-device", target,
                                       "--output", out, "--json"], capture_output=True, text=True)
            seconds = time.time() - start
            if compiled.returncode != 0:
                print(f"FAIL {name} {target}: compile: {compiled.stderr.strip().splitlines()[-1]}")
                failed += 1
                continue
            artifact = json.loads(compiled.stdout)["artifactPath"]
            results = os.path.join(out, "outputs")
            ran = subprocess.run([args.kiln, "run", artifact, "--output-dir", results] +
                                 [x for f in inputs for x in ("--input", f"{f[len('input_'):-4]}={os.path.join(directory, f)}")],
                                 capture_output=True, text=True)
            if ran.returncode != 0:
                print(f"FAIL {name} {target}: run: {ran.stderr.strip().splitlines()[-1]}")
                failed += 1
                continue
            worst = 0.0
            for output, reference in expected.items():
                got = np.load(os.path.join(results, f"{output}.npy"))
                worst = max(worst, float(np.abs(got - reference).max() / max(np.abs(reference).max(), 1e-30)))
            ok = worst <= 1e-4
            passed, failed = passed + ok, failed + (not ok)
            print(f"{'PASS' if ok else 'FAIL'} {name} {target}: max relative error {worst:.2e}, compile {seconds:.1f} s")
    print(f"zoo parity: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
