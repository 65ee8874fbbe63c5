"""Set-up hooks the AWS stand-in tests pass to ``facade.aws_local``."""

from __future__ import annotations

import boto3

from extracted.orders.store import create_table


def make_table() -> None:
    create_table(boto3.client("dynamodb"), "hooked")


def fail() -> None:
    raise RuntimeError("the hook failed")
