"""Drives `kiln serve` the way AWS clients do: boto3 for the API, raw sockets
for broken HTTP. Prints one JSON object of observations for the Swift test.
Usage: serve_client.py PORT REGION MODEL"""
import json, socket, sys, time

import boto3
from botocore.config import Config

port, region, model = sys.argv[1], sys.argv[2], sys.argv[3]
url = f"http://127.0.0.1:{port}"
seen = {}


def client(key, secret):
    return boto3.client("sagemaker", endpoint_url=url, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def error_code(call):
    try:
        call()
        return "none"
    except client("x", "y").exceptions.ClientError as error:
        return error.response["Error"]["Code"]


alice = client("AKIAALICE0000000001", "alice-secret-key")
bob = client("AKIABOB00000000000002", "bob-secret-key")
arn = alice.create_compilation_job(
    CompilationJobName="boto-digits", RoleArn="arn:aws:iam::111111111111:role/kiln",
    InputConfig={"S3Uri": model, "Framework": "ONNX", "DataInputConfig": '{"image": [1,1,8,8]}'},
    OutputConfig={"S3OutputLocation": "s3://bucket/boto", "TargetDevice": "ml_c4"},
    StoppingCondition={"MaxRuntimeInSeconds": 300})["CompilationJobArn"]
seen["arn"] = arn
deadline = time.time() + 120
while time.time() < deadline:
    job = alice.describe_compilation_job(CompilationJobName="boto-digits")
    if job["CompilationJobStatus"] not in ("STARTING", "INPROGRESS"):
        break
    time.sleep(0.3)
seen["status"] = job["CompilationJobStatus"]
seen["artifact"] = job["ModelArtifacts"]["S3ModelArtifacts"]
seen["digest"] = job.get("ModelDigests", {}).get("ArtifactDigest", "")
seen["alice_jobs"] = [j["CompilationJobName"] for j in alice.list_compilation_jobs()["CompilationJobSummaries"]]
seen["bob_jobs"] = [j["CompilationJobName"] for j in bob.list_compilation_jobs()["CompilationJobSummaries"]]
seen["bob_describe"] = error_code(lambda: bob.describe_compilation_job(CompilationJobName="boto-digits"))
seen["bob_delete"] = error_code(lambda: bob.delete_compilation_job(CompilationJobName="boto-digits"))
seen["wrong_secret"] = error_code(lambda: client("AKIAALICE0000000001", "nope").list_compilation_jobs())
seen["unknown_key"] = error_code(lambda: client("AKIANOBODY", "nope").list_compilation_jobs())
seen["validation"] = error_code(lambda: alice.describe_compilation_job(CompilationJobName="bad name"))
seen["in_use"] = error_code(lambda: alice.create_compilation_job(
    CompilationJobName="boto-digits", RoleArn="arn:aws:iam::111111111111:role/kiln",
    InputConfig={"S3Uri": model, "Framework": "ONNX"},
    OutputConfig={"S3OutputLocation": "s3://bucket/boto", "TargetDevice": "ml_c4"}, StoppingCondition={}))


def raw(request, read=True):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as connection:
        connection.sendall(request)
        if not read:
            return ""
        data = b""
        try:
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    break
        except socket.timeout:
            pass
        return data.decode("latin-1").split("\r\n")[0]


seen["unsigned"] = raw(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.ListCompilationJobs\r\n"
                       b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
seen["garbage"] = raw(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
seen["lying_length"] = raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}", read=False)
seen["huge_body"] = raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\nConnection: close\r\n\r\n" + b"x" * 3000000)
seen["ping"] = raw(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
alice.delete_compilation_job(CompilationJobName="boto-digits")
seen["after_delete"] = error_code(lambda: alice.describe_compilation_job(CompilationJobName="boto-digits"))
print(json.dumps(seen))
