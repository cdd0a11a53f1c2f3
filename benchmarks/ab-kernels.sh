#!/usr/bin/env bash
# A/B timing of a kernel change on one model: compiles MODEL twice for this CPU (LINUX/X86_64, mcpu native),
# once as the sources stand and once with extra clang flags (typically a -D that turns the change off, e.g.
# -DKK_DEPTHWISE_VECTOR=0 or -DKK_CONV_BLOCK_FLOATS=1000000000000), then alternates `kiln bench` runs of the
# two so that the machine's drift hits both alike. Prints the median of the medians and the minimum of each.
#
# Usage: benchmarks/ab-kernels.sh MODEL.tar.gz DATA_INPUT_CONFIG 'CLANG FLAGS' [THREADS] [ROUNDS]
#   e.g. benchmarks/ab-kernels.sh models/zoo/mobilenetv2/model.tar.gz '{"data":[1,3,224,224]}' -DKK_DEPTHWISE_VECTOR=0
# KILN (default .build/debug/kiln) is the kiln binary; the variant gets its own KILN_HOME (its kernel objects
# must not land in the shared cache, whose key does not include the extra flags).
set -euo pipefail
model=$1 config=$2 flags=$3 threads=${4:-1} rounds=${5:-5}
kiln=${KILN:-.build/debug/kiln}
clang=${CC:-/opt/swift/usr/bin/clang}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexec %s %s "$@"\n' "$clang" "$flags" > "$work/cc"
chmod +x "$work/cc"
compile() {
  "$kiln" compile --model "$model" --target-platform LINUX/X86_64 --compiler-options '{"mcpu": "native"}' \
    --data-input-config "$config" --output "$work/$1" --json > /dev/null
}
compile as-is
KILN_HOME="$work/home" CC="$work/cc" compile with-flags
for _ in $(seq "$rounds"); do
  for variant in as-is with-flags; do
    echo "$variant $("$kiln" bench "$work/$variant"/*.tar.gz --iterations 10 --warmup 2 --threads "$threads" --json | tr -d '\n')"
  done
done | python3 -c '
import json, statistics, sys
runs = {}
for line in sys.stdin:
    variant, result = line.split(" ", 1)
    result = json.loads(result)
    runs.setdefault(variant, []).append((result["medianMilliseconds"], result["minMilliseconds"]))
for variant, values in runs.items():
    print(f"{variant:10} median of medians {statistics.median(v[0] for v in values):8.3f} ms   min {min(v[1] for v in values):8.3f} ms")
'
