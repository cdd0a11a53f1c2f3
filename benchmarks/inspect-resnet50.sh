#!/usr/bin/env bash
# Times `kiln inspect` (fetch -> unpack -> parse -> check) on a ~100 MB
# ResNet-50 in a .tar.gz, five runs, reporting each run's stage times and
# wall time / peak RSS. Generates the model first if needed (pip: numpy onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/install-deps)"
[ -f models/zoo/resnet50/model.tar.gz ] || python3 models/make_zoo.py resnet50
swift build -c release --product kiln >/dev/null
export KILN_HOME="${KILN_HOME:-$(mktemp -d)}"
for run in 1 2 3 4 5; do
  /usr/bin/time -f "run $run: wall %e s, peak RSS %M KB" \
    .build/release/kiln inspect models/zoo/resnet50/model.tar.gz --data-input-config '{"data": [1,3,224,224]}' 2>&1 \
    | grep -E "^stages|^run"
done
