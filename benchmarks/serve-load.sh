#!/usr/bin/env bash
# Load on `kiln serve` from wrk on loopback: signed DescribeCompilationJob
# requests (signed once by botocore, valid 15 minutes; the server verifies
# every one in full), first with no job running, then while a compile job
# runs. Prints requests/s, latency percentiles and errors for both.
# Needs wrk (apt-get install wrk) and boto3. Usage: benchmarks/serve-load.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-16}"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
swift build -c release --product kiln >/dev/null
kiln="$PWD/.build/release/kiln"
export KILN_HOME="$(mktemp -d)" KILN_NO_AUTOSTART=1
trap 'kill $server 2>/dev/null || true; rm -rf "$KILN_HOME"' EXIT
cat > "$KILN_HOME/credentials" <<'CREDS'
[bench]
aws_access_key_id = AKIABENCH0000000001
aws_secret_access_key = bench-secret-key
aws_account_id = 111111111111
CREDS
chmod 600 "$KILN_HOME/credentials"
"$kiln" serve --port 0 --credentials "$KILN_HOME/credentials" --region us-east-1 --workers 1 ${KILN_SERVE_ARGS:-} \
  > "$KILN_HOME/serve.out" 2> "$KILN_HOME/access.log" &
server=$!
for _ in $(seq 50); do grep -q listening "$KILN_HOME/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -nE 's/.*127\.0\.0\.1:([0-9]+).*/\1/p' "$KILN_HOME/serve.out")

# Sign requests with botocore; create the job to describe and a second one to run during the load.
python3 - "$port" "$PWD/models/digits-cnn/model.tar.gz" "$KILN_HOME" <<'PY'
import json, sys, time, boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
port, model, home = sys.argv[1], sys.argv[2], sys.argv[3]
url = f"http://127.0.0.1:{port}/"
client = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="AKIABENCH0000000001", aws_secret_access_key="bench-secret-key")
def create(name, device):
    client.create_compilation_job(CompilationJobName=name, RoleArn="arn:aws:iam::111111111111:role/bench",
        InputConfig={"S3Uri": model, "Framework": "ONNX", "DataInputConfig": '{"image": [1,1,8,8]}'},
        OutputConfig={"S3OutputLocation": "s3://bench/" + name, "TargetDevice": device},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
create("described", "ml_c4")
while client.describe_compilation_job(CompilationJobName="described")["CompilationJobStatus"] in ("STARTING", "INPROGRESS"):
    time.sleep(0.2)
body = json.dumps({"CompilationJobName": "described"})
request = AWSRequest(method="POST", url=url, data=body, headers={
    "X-Amz-Target": "SageMaker.DescribeCompilationJob", "Content-Type": "application/x-amz-json-1.1"})
SigV4Auth(Credentials("AKIABENCH0000000001", "bench-secret-key"), "sagemaker", "us-east-1").add_auth(request)
lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
for name, value in request.headers.items():
    lines.append(f'wrk.headers["{name}"] = {json.dumps(value)}')
open(home + "/describe.lua", "w").write("\n".join(lines) + "\n")
PY

run() {
  wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$KILN_HOME/describe.lua" "http://127.0.0.1:$port/" \
    > "$KILN_HOME/wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$KILN_HOME/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$KILN_HOME/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$KILN_HOME/wrk.txt")
  errors=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print $0}' "$KILN_HOME/wrk.txt" | tr '\n' ' ')
  echo "$1: ${rps} requests/s, p50 ${p50}, p99 ${p99}, errors: ${errors:-0}"
}

run "signed DescribeCompilationJob, no job running"
# A cold compile (an empty kernel cache, two CPU variants for ml_c5) runs during the second round.
rm -rf "$KILN_HOME/cache"
python3 - "$port" "$PWD/models/digits-cnn/model.tar.gz" <<'PY'
import sys, boto3
client = boto3.client("sagemaker", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}/", region_name="us-east-1",
                      aws_access_key_id="AKIABENCH0000000001", aws_secret_access_key="bench-secret-key")
client.create_compilation_job(CompilationJobName="during-load", RoleArn="arn:aws:iam::111111111111:role/bench",
    InputConfig={"S3Uri": sys.argv[2], "Framework": "ONNX", "DataInputConfig": '{"image": [1,1,8,8]}'},
    OutputConfig={"S3OutputLocation": "s3://bench/during", "TargetDevice": "ml_c5"},
    StoppingCondition={"MaxRuntimeInSeconds": 600})
PY
sleep 0.5
run "signed DescribeCompilationJob, a compile job running"
KILN_ACCOUNT_ID=111111111111 "$kiln" describe-compilation-job --compilation-job-name during-load \
  | python3 -c "import json, sys; d = json.load(sys.stdin); print('the job during the load:', d['CompilationJobStatus'], 'from', d.get('CompilationStartTime'), 'to', d.get('CompilationEndTime'))"
