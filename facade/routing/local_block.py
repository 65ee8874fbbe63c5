"""The ``local:`` blocks of routing.yaml: how ``strangler up`` runs the file on one machine.

Top level::

    local:
      aws:                                # the AWS-API stand-ins
        endpoint: http://127.0.0.1:4566   # moto's server: every API but DynamoDB
        dynamodb: http://127.0.0.1:4567   # dynalite (npm)
        sqs: http://127.0.0.1:4568        # fauxqs (npm)
        data: var/aws                     # dynalite keeps its tables here
        setup: [extracted.orders.store:create_local_table]
      env: {KEY: value}                   # for every local process

Per backend::

    local:
      setup: ["{python} -m monolith.manage migrate --noinput"]
      run: "{python} -m gunicorn --bind {bind} monolith.wsgi"
      health: /healthz
      env: {DATABASE_URL: "${DATABASE_URL:-}"}

A Lambda backend with a ``handler`` runs inside the facade: it has no ``run``, and its
``env`` is the facade's (as a function's environment variables are on AWS).
Nothing here reaches AWS: these blocks only describe the laptop.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from facade.routing.checker import CALLABLE, Checker, show
from facade.routing.model import LocalAws, LocalRun, LocalStack

RUN_KEYS = ("setup", "run", "health", "env", "workers")
STACK_KEYS = ("aws", "env")
AWS_KEYS = ("endpoint", "dynamodb", "sqs", "data", "setup")

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _commands(check: Checker, node: CommentedMap, key: str, path: str) -> tuple[str, ...]:
    value = node.get(key)
    items = list(value) if isinstance(value, CommentedSeq) else [value]
    good = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            check.at(
                node, key, f"{path}.{key}", f"{show(item)}: each command is a non-empty string"
            )
        else:
            good.append(item)
    return tuple(good)


def _env(check: Checker, node: CommentedMap, path: str) -> dict[str, str]:
    if "env" not in node:
        return {}
    body = node["env"]
    if not isinstance(body, CommentedMap):
        check.at(node, "env", f"{path}.env", f"must be a mapping of NAME: value, got {show(body)}")
        return {}
    env: dict[str, str] = {}
    for name, value in body.items():
        if not ENV_NAME.match(str(name)):
            check.at(
                body, name, f"{path}.env.{name}", "not an environment variable name", value=False
            )
        elif isinstance(value, CommentedMap | CommentedSeq) or value is None:
            check.at(body, name, f"{path}.env.{name}", f"{show(value)}: use a string or number")
        else:
            env[str(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def local_run(
    check: Checker, backend: CommentedMap, path: str, *, in_facade: bool
) -> LocalRun | None:
    if "local" not in backend:
        return None
    node = check.mapping(backend["local"], backend, "local", f"{path}.local", RUN_KEYS)
    if node is None:
        return None
    path = f"{path}.local"
    run = None
    if "run" in node:
        if in_facade:
            check.at(
                node, "run", f"{path}.run", "a Lambda handler runs inside the facade: no 'run'"
            )
        else:
            commands = _commands(check, node, "run", path)
            run = commands[0] if len(commands) == 1 else None
            if len(commands) > 1:
                check.at(node, "run", f"{path}.run", "one command: the long-running process")
    health = str(node.get("health", "/healthz"))
    if not health.startswith("/"):
        check.at(node, "health", f"{path}.health", f"{health!r}: a path starting with '/'")
    setup = _commands(check, node, "setup", path) if "setup" in node else ()
    workers: dict[str, str] = {}
    if "workers" in node:
        body = node["workers"]
        if not isinstance(body, CommentedMap):
            check.at(
                node,
                "workers",
                f"{path}.workers",
                f"must be a mapping of name: command, got {show(body)}",
            )
        else:
            for name, command in body.items():
                if not isinstance(command, str) or not command.strip():
                    check.at(body, name, f"{path}.workers.{name}", f"{show(command)}: a command")
                else:
                    workers[str(name)] = command
    return LocalRun(
        setup=setup, run=run, health=health, env=_env(check, node, path), workers=workers
    )


def _address(check: Checker, node: CommentedMap, key: str, *, required: bool) -> str | None:
    if key not in node and not required:
        return None
    value = str(node.get(key, ""))
    parts = urlsplit(value)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        check.at(node, key, f"local.aws.{key}", f"{value!r}: use http://HOST:PORT on this machine")
        return None
    return value.rstrip("/")


def local_stack(check: Checker, document: CommentedMap) -> LocalStack:
    if "local" not in document:
        return LocalStack()
    node = check.mapping(document["local"], document, "local", "local", STACK_KEYS)
    if node is None:
        return LocalStack()
    aws = None
    if "aws" in node:
        body = check.mapping(node["aws"], node, "aws", "local.aws", AWS_KEYS)
        if body is not None:
            endpoint = _address(check, body, "endpoint", required=True) or ""
            dynamodb = _address(check, body, "dynamodb", required=False)
            sqs = _address(check, body, "sqs", required=False)
            hooks = _commands(check, body, "setup", "local.aws") if "setup" in body else ()
            for hook in hooks:
                if not CALLABLE.match(hook):
                    check.at(body, "setup", "local.aws.setup", f"{hook!r}: use 'module:function'")
            data = str(body["data"]) if body.get("data") else None
            aws = LocalAws(endpoint, dynamodb, sqs, data, hooks)
    return LocalStack(aws=aws, env=_env(check, node, "local"))


__all__ = ["local_run", "local_stack"]
