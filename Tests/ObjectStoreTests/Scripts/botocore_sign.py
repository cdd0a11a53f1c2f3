"""Signs one S3 request with botocore (the AWS SDK for Python's SigV4 signer) at a fixed time.

Usage: botocore_sign.py METHOD URL REGION ACCESS_KEY SECRET_KEY AMZ_DATE BODY
Prints the Authorization header botocore computes: the reference the Swift signer must match.
The URL is given already percent-encoded, as the Swift client sends it.
"""
import datetime
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

method, url, region, access, secret, amz_date, body = sys.argv[1:8]
when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
request = AWSRequest(method=method, url=url, data=body.encode())
signer = botocore.auth.S3SigV4Auth(Credentials(access, secret), "s3", region)
with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
    signer.add_auth(request)
print(request.headers["Authorization"])
