#!/usr/bin/env python3
"""Where a convolutional network's time goes, in GFLOP/s: times every step of a compiled zoo model with
`kiln bench --profile --json` and divides each convolution's multiply-adds (from the ONNX model: output
pixels x output channels x input channels per group x kernel taps, times 2) by its time. Prints the
convolutions grouped by kernel size and stride, with their count, time and GFLOP/s, then the other steps.

Usage: python3 benchmarks/conv-gflops.py [--kiln .build/debug/kiln] [--threads 1] [--iterations 20] [--layers] [model]
       (model: a zoo name, default resnet50; compiled for this CPU, mcpu native)
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
from make_zoo import SHAPES, ZOO  # noqa: E402


def conv_flops(model):
    """Node name -> (FLOPs, kernel label) for every Conv, from the model's shapes after inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    # A symbolic batch dim reads as 0: batch 1, as the benchmarks run.
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    result = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        out_channels, per_group, *kernel = weights[node.input[1]]
        output = shapes[node.output[0]]
        pixels = 1
        for dim in output[2:]:
            pixels *= dim
        taps = 1
        for dim in kernel:
            taps *= dim
        group = attributes.get("group", 1)
        stride = attributes.get("strides", [1] * len(kernel))[0]
        kind = "depthwise " if group > 1 and per_group == 1 else ""
        label = f"{kind}{' x '.join(map(str, kernel))}, stride {stride}"
        shape = f"{per_group * group}->{out_channels} at {'x'.join(map(str, output[2:]))}"
        weights_kib = out_channels * per_group * taps * 4 / 1024
        result[node.name] = (2.0 * output[0] * pixels * out_channels * per_group * taps, label, shape, weights_kib)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build/debug/kiln"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--layers", action="store_true", help="also print every convolution on its own line")
    parser.add_argument("model", nargs="?", default="resnet50")
    args = parser.parse_args()
    archive = os.path.join(ZOO, args.model, "model.tar.gz")
    if not os.path.exists(archive):
        subprocess.run([sys.executable, os.path.join(ROOT, "models", "make_zoo.py"), args.model], check=True)
    with tarfile.open(archive) as tar:
        model = onnx.load_from_string(tar.extractfile("model.onnx").read())
    flops = conv_flops(model)
    work = tempfile.mkdtemp(prefix="kiln-conv-gflops-")
    env = dict(os.environ, KILN_HOME=os.path.join(work, "home"), KILN_NO_AUTOSTART="1")
    subprocess.run([args.kiln, "compile", "--model", archive, "--data-input-config", json.dumps(SHAPES[args.model]),
                    "--target-platform", "LINUX/X86_64", "--compiler-options", '{"mcpu": "native"}',
                    "--output", os.path.join(work, "out")], env=env, check=True, stdout=subprocess.DEVNULL)
    artifact = os.path.join(work, "out", os.listdir(os.path.join(work, "out"))[0])
    profile = json.loads(subprocess.run(
        [args.kiln, "bench", artifact, "--profile", "--json", "--threads", str(args.threads),
         "--iterations", str(args.iterations)], env=env, check=True, capture_output=True, text=True).stdout)
    groups = collections.OrderedDict()
    other = collections.Counter()
    layers = []
    for step in profile["steps"]:
        match = re.match(r"(\S+) '(.*)' ", step["label"])
        name = match.group(2) if match else ""
        if name in flops:
            work_flops, label, shape, weights_kib = flops[name]
            layers.append((label, shape, weights_kib, step["milliseconds"], work_flops))
            entry = groups.setdefault(label, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += step["milliseconds"]
            entry[2] += work_flops
        else:
            other[match.group(1) if match else step["label"]] += step["milliseconds"]
    print(f"{args.model}: {profile['totalMilliseconds']:.2f} ms per run, {args.threads} thread(s), "
          f"{profile['variant']} code")
    print(f"{'convolutions':<26} {'count':>5} {'ms':>9} {'GFLOP/s':>8}")
    for label, (count, milliseconds, work_flops) in sorted(groups.items(), key=lambda item: -item[1][1]):
        print(f"{label:<26} {count:>5} {milliseconds:>9.2f} {work_flops / milliseconds / 1e6:>8.1f}")
    total_flops = sum(entry[2] for entry in groups.values())
    total_ms = sum(entry[1] for entry in groups.values())
    print(f"{'all convolutions':<26} {sum(e[0] for e in groups.values()):>5} {total_ms:>9.2f} "
          f"{total_flops / total_ms / 1e6:>8.1f}")
    for op, milliseconds in other.most_common():
        print(f"{op:<26} {'':>5} {milliseconds:>9.2f}")
    if args.layers:
        print(f"\n{'convolution':<26} {'channels at output size':<24} {'weights KiB':>11} {'ms':>8} {'GFLOP/s':>8}")
        for label, shape, weights_kib, milliseconds, work_flops in layers:
            print(f"{label:<26} {shape:<24} {weights_kib:>11.0f} {milliseconds:>8.3f} "
                  f"{work_flops / milliseconds / 1e6:>8.1f}")


if __name__ == "__main__":
    main()
