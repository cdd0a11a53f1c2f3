#!/usr/bin/env python3
"""Compiles the sample models and ResNet-18 for every Linux CPU TargetDevice of
issue 7's list (plus the 32-bit x86 TargetPlatform and the Windows DLLs), runs
each Linux artifact with `kiln run` (natively, or under qemu-user for Arm and
i686) and compares its outputs with ONNX Runtime's: max |kiln - ort| / max |ort|
must be <= 1e-4. Prints one line per (model, target) and exits 1 on any
mismatch or failure. Called by scripts/cross-targets, which installs what it needs.

Usage: cross_targets.py KILN [--quick | --all]   (--quick: the sample models only; --all: ResNet-18 on every
device, not one per architecture)
"""
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILN = sys.argv[1]
QUICK = "--quick" in sys.argv[2:]
ALL = "--all" in sys.argv[2:]

# (label, kiln compile target arguments, runs here?)
ARM = [
    ("ml_c6g", ["--target-device", "ml_c6g"]),
    ("rasp4b", ["--target-device", "rasp4b"]),
    ("jetson_nano cpu-only", ["--target-device", "jetson_nano", "--compiler-options", '{"cpu-only": true}']),
    ("rasp3b", ["--target-device", "rasp3b"]),
    ("rk3288", ["--target-device", "rk3288"]),
]
# The other Arm devices Kiln supports: the sample models only.
ARM_MORE = [(device, ["--target-device", device]) for device in ["ml_m6g", "imx8qm", "rk3399", "aisage", "sitara_am57x"]]
X86 = [(device, ["--target-device", device]) for device in ["lambda", "ml_c4", "ml_c5", "ml_m4", "ml_m5", "sbe_c"]]
X86 += [("LINUX/X86 (i686)", ["--target-platform", "LINUX/X86"])]
WINDOWS = [("x86_win64", ["--target-device", "x86_win64"]), ("x86_win32", ["--target-device", "x86_win32"])]
# ResNet-18 on one device per architecture and C library (it takes ~25 s per run under qemu; CI has 30 min).
RESNET = {"ml_c6g", "rasp3b", "ml_c5", "LINUX/X86 (i686)", "x86_win64"}


def onnx_bytes(archive):
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".onnx"))
        return tar.extractfile(member).read()


def models():
    cnn = os.path.join(ROOT, "models/digits-cnn")
    mlp = os.path.join(ROOT, "models/digits-mlp")
    digit = np.load(os.path.join(cnn, "sample-digit-0.npy"))
    yield "digits-cnn", os.path.join(cnn, "model.tar.gz"), '{"image": [1,1,8,8]}', {"image": digit}
    yield "digits-mlp", os.path.join(mlp, "model.tar.gz"), None, {"pixels": digit.reshape(1, 64)}
    if not QUICK:
        zoo = os.path.join(ROOT, "models/zoo/resnet18")
        data = np.load(os.path.join(zoo, "input_data.npy"))
        yield "resnet18", os.path.join(zoo, "model.tar.gz"), '{"data": [1,3,224,224]}', {"data": data}


def check(work, env, name, archive, config, expected, input_args, label, target, runs):
    """Compiles one model for one target and runs it; returns (ok, line)."""
    out = os.path.join(work, f"{name}-{label.split()[0].replace('/', '_')}")
    os.makedirs(out, exist_ok=True)
    command = [KILN, "compile", "--model", archive, "--framework", "ONNX", "--output", out] + target
    if config:
        command += ["--data-input-config", config]
    start = time.monotonic()
    compiled = subprocess.run(command, env=env, capture_output=True, text=True)
    compile_s = time.monotonic() - start
    if compiled.returncode != 0:
        return False, f"FAIL {name:11} {label:22} compile: {compiled.stderr.strip()}"
    artifact = next(os.path.join(out, f) for f in os.listdir(out) if f.endswith(".tar.gz"))
    with tarfile.open(artifact) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    variants = "/".join(v["name"] for v in manifest["variants"])
    if not runs:
        ok = manifest.get("library") == "model.dll"
        return ok, (f"{'PASS' if ok else 'FAIL'} {name:11} {label:22} {manifest['triple']:32} {variants:24} "
                    f"compiled in {compile_s:4.1f} s: a DLL (its structure is checked by the test suite)")
    start = time.monotonic()
    ran = subprocess.run([KILN, "run", artifact, "--output-dir", os.path.join(out, "results")] + input_args,
                         env=env, capture_output=True, text=True)
    run_s = time.monotonic() - start
    if ran.returncode != 0:
        return False, f"FAIL {name:11} {label:22} run: {ran.stderr.strip()}"
    worst = 0.0
    for output, reference in expected.items():
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in output)
        got = np.load(os.path.join(out, "results", safe + ".npy"))
        worst = max(worst, float(np.abs(got - reference).max() / max(np.abs(reference).max(), 1e-30)))
    how = "qemu-user" if "qemu" in ran.stderr else "native"
    ok = worst <= 1e-4
    return ok, (f"{'PASS' if ok else 'FAIL'} {name:11} {label:22} {manifest['triple']:32} {variants:24} "
                f"max rel err {worst:.1e} ({how}; compile {compile_s:4.1f} s, run {run_s:5.1f} s)")


def main():
    failures = 0
    work = tempfile.mkdtemp(prefix="kiln-cross-")
    env = dict(os.environ, KILN_HOME=os.environ.get("KILN_HOME", os.path.join(work, "home")))
    targets = [(l, t, True) for l, t in ARM + X86] + [(l, t, False) for l, t in WINDOWS]
    more = [(l, t, True) for l, t in ARM_MORE]
    # Two at a time: each compile and each emulated run uses one core.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, archive, config, inputs in models():
            session = ort.InferenceSession(onnx_bytes(archive), providers=["CPUExecutionProvider"])
            expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, inputs)))
            input_args = []
            for key, value in inputs.items():
                path = os.path.join(work, f"{name}-{key}.npy")
                np.save(path, value)
                input_args += ["--input", f"{key}={path}"]
            jobs = [pool.submit(check, work, env, name, archive, config, expected, input_args, *target)
                    for target in (targets + more if name != "resnet18" else
                                   [t for t in targets if ALL or t[0] in RESNET])]
            for job in jobs:
                ok, line = job.result()
                print(line, flush=True)
                failures += 0 if ok else 1
    print(f"cross-targets: {'all match ONNX Runtime' if failures == 0 else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
