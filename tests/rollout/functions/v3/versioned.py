"""Version 3 of the test function: a regression — three invocations in ten raise.

Every version is the same module in its own code directory, as each published version
of a Lambda function is its own zip."""

from __future__ import annotations

import json
import random
from typing import Any

VERSION = "3"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if random.random() < 0.3:
        raise RuntimeError("version 3 fails three invocations in ten")
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-version": VERSION},
        "body": json.dumps({"version": VERSION, "path": event["path"]}),
        "isBase64Encoded": False,
    }
