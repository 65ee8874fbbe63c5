"""Version 1 of the test function: answers every invocation.

Every version is the same module in its own code directory, as each published version
of a Lambda function is its own zip."""

from __future__ import annotations

import json
from typing import Any

VERSION = "1"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-version": VERSION},
        "body": json.dumps({"version": VERSION, "path": event["path"]}),
        "isBase64Encoded": False,
    }
