"""A Lambda function on the AWS stand-in with two published versions and an alias, for
the version canary's tests."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3

from facade import aws_local
from facade.aws.lambda_client import FunctionClient


def code_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return out.getvalue()


@dataclass
class Function:
    name: str
    lambda_: Any
    client: FunctionClient


def published_function(endpoint: str) -> Function:
    """A function with versions 1 and 2 published and its alias ``live`` on 1."""
    name = f"orders-{uuid.uuid4().hex[:8]}"
    raw = boto3.client("lambda", endpoint_url=endpoint, **aws_local.CREDENTIALS)
    iam = boto3.client("iam", endpoint_url=endpoint, **aws_local.CREDENTIALS)
    trust = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        }
    )
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=trust)
    raw.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code_zip()},
    )
    raw.publish_version(FunctionName=name)
    raw.update_function_code(FunctionName=name, ZipFile=code_zip() + b"")
    raw.publish_version(FunctionName=name, Description="2")
    versions = [v["Version"] for v in raw.list_versions_by_function(FunctionName=name)["Versions"]]
    assert {"1", "2"} <= set(versions)
    raw.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    client = FunctionClient.connect(endpoint, aws_local.CREDENTIALS)
    return Function(name, raw, client)


__all__ = ["Function", "code_zip", "published_function"]
