"""Lambda handlers the proxy tests route to. They read the event the way production
handlers do, through aws-lambda-powertools' ``ALBEvent``."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from aws_lambda_powertools.utilities.data_classes import ALBEvent


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    alb = ALBEvent(event)
    body = {
        "keys": sorted(event),
        "method": alb.http_method,
        "path": alb.path,
        "query": alb.query_string_parameters,
        "multi_query": alb.multi_value_query_string_parameters,
        "headers": dict(alb.headers),
        "raw_headers": event.get("headers"),
        "multi_headers": event.get("multiValueHeaders"),
        "body": alb.decoded_body,
        "is_base64": alb.is_base64_encoded,
        "target_group": event["requestContext"]["elb"]["targetGroupArn"],
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {
        "statusCode": 201 if alb.http_method == "POST" else 200,
        "headers": {"content-type": "application/json", "x-handler": "echo"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def multi(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "multiValueHeaders": {
            "set-cookie": ["a=1; Path=/", "b=2; Path=/"],
            "content-type": ["application/json"],
        },
        "body": json.dumps({"custom": event["multiValueHeaders"].get("x-custom")}),
        "isBase64Encoded": False,
    }


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    received = base64.b64decode(event["body"]) if event["isBase64Encoded"] else b""
    payload = bytes(reversed(received)) if received else bytes(range(256))
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(payload).decode(),
        "isBase64Encoded": True,
    }


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(1.5)
    return {"statusCode": 200, "body": "finally"}


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("the handler failed")


def not_a_response(event: dict[str, Any], context: Any) -> object:
    return "not a dict"


def status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers the status that ends the path (``/…/204``), naming the request in the body."""
    return {
        "statusCode": int(event["path"].rsplit("/", 1)[1]),
        "headers": {"content-type": "text/plain"},
        "body": f"{event['httpMethod']} {event['path']}",
    }


def environment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``/env/sleep/<s>`` sleeps (first creating the file named in the body, if any: it
    has started); ``/env/touch`` creates the file named in the body; ``/env/big`` answers
    more than 1 MB; anything else names the environment's process."""
    path = event["path"]
    if path.startswith("/env/sleep/"):
        if event.get("body"):
            with open(event["body"], "a") as started:
                started.write("sleeping\n")
        time.sleep(float(path.rsplit("/", 1)[1]))
    elif path == "/env/touch":
        with open(event["body"], "a") as marker:
            marker.write("ran\n")
    elif path == "/env/big":
        return {"statusCode": 200, "body": "x" * (1024 * 1024 + 1)}
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid(), "path": path})}
