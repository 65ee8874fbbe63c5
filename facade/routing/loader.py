"""routing.yaml → a validated ``RoutingTable``, or every problem with file:line:column.

Validation happens here, once, and enforces AWS's limits itself (the local stand-ins do
not): at most 5 targets per forward action, weights ALB can express, path patterns of at
most 128 characters with ALB's characters and wildcards, at most 3 match evaluations per
condition, 5 per rule and 5 wildcards per rule, priorities 1-50,000 and unique, the
rules-per-load-balancer quota, stickiness 1-604,800 s. A file with problems is refused
whole: callers keep the table they had.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from facade.exceptions import Problem, RoutingFileError
from facade.routing import patterns
from facade.routing.api_block import api_settings
from facade.routing.canary_block import version_canary
from facade.routing.checker import NAME
from facade.routing.checker import Checker as _Checker
from facade.routing.checker import position as _position
from facade.routing.checker import show as _show
from facade.routing.faults_block import faults as _faults
from facade.routing.local_block import local_run, local_stack
from facade.routing.model import (
    SHARE_TOTAL,
    Backend,
    BackendKind,
    FacadeSettings,
    FixedResponse,
    HeaderCondition,
    Limits,
    Match,
    Override,
    Route,
    RoutingTable,
    StableKey,
    Stickiness,
    SyncStream,
    Target,
    Timeouts,
    parse_share,
)
from facade.routing.rollout_block import rollout_plan
from facade.routing.shadow_block import shadow as _shadow
from facade.routing.sync_block import sync_streams

MAX_TARGETS = 5
MAX_EVALUATIONS_PER_CONDITION = 3
MAX_EVALUATIONS_PER_RULE = 5
MAX_WILDCARDS_PER_RULE = 5
PRIORITY_MIN, PRIORITY_MAX = 1, 50_000
STICKY_MIN, STICKY_MAX = 1, 604_800
HANDLER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_ROUTE = "default"

TOP_KEYS = ("version", "facade", "backends", "routes", "default", "local", "sync", "api")
BACKEND_KEYS = (
    "kind",
    "url",
    "handler",
    "multi_value_headers",
    "aws",
    "local",
    "faults",
    "canary",
)
ROUTE_KEYS = (
    "name",
    "priority",
    "match",
    "targets",
    "fixed_response",
    "stickiness",
    "stable_key",
    "auth",
    "shadow",
    "rollout",
)
# ALB's fixed-response action: these content types, a body of at most 1024 characters
FIXED_CONTENT_TYPES = (
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
)
FIXED_BODY_MAX = 1024
MATCH_KEYS = ("paths", "methods", "headers")
FACADE_KEYS = (
    "listen",
    "backend_header",
    "route_header",
    "override",
    "timeouts",
    "max_body_bytes",
    "max_rules",
    "sticky_cookie",
    "admin",
    "audit_log",
    "access_log",
    "limits",
    "cookie_secret",
)
# facade.limits: key → (lowest, highest, whole number?)
LIMIT_RANGES: dict[str, tuple[float, float, bool]] = {
    "request_line": (1024, 16 * 1024, True),  # ALB's quotas are the ceilings
    "header": (1024, 16 * 1024, True),
    "headers": (4096, 64 * 1024, True),
    "header_count": (1, 1000, True),
    "header_timeout": (1, 4000, False),
    "idle_timeout": (1, 4000, False),  # ALB's idle timeout: 1-4000 s
    "connections": (1, 1_000_000, True),
    "pipeline": (1, 1000, True),
}
# whole-number settings of the aws blocks and the ranges AWS takes
AWS_RANGES: dict[BackendKind, dict[str, tuple[int, int]]] = {
    BackendKind.LAMBDA: {"timeout": (1, 900), "memory": (128, 10_240)},
    BackendKind.ECS: {"memory": (512, 122_880), "desired_count": (0, 1000)},
}
FARGATE_CPU = (256, 512, 1024, 2048, 4096, 8192, 16384)
AWS_KEYS: dict[BackendKind, tuple[str, ...]] = {
    BackendKind.MONOLITH: ("target_group_arn", "instances", "port", "vpc_id", "health_check"),
    BackendKind.LAMBDA: (
        "function",
        "alias",
        "target_group_arn",
        "code",
        "timeout",
        "memory",
        "environment",
        "policies",
    ),
    BackendKind.ECS: (
        "cluster",
        "service",
        "container_port",
        "vpc_id",
        "health_check",
        "target_group_arn",
        "image",
        "cpu",
        "memory",
        "desired_count",
        "environment",
    ),
    BackendKind.URL: ("target_group_arn",),
}


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def load_table(path: str | Path) -> RoutingTable:
    """Read and validate a routing file; raise ``RoutingFileError`` listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingFileError([Problem(file, 1, 1, "(file)", f"cannot read: {exc}")]) from exc
    return parse_table(text, file)


def parse_table(text: str, file: str = "routing.yaml") -> RoutingTable:
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RoutingFileError(
            [Problem(file, line, column, "(syntax)", f"not valid YAML: {exc.problem}")]
        ) from exc
    check = _Checker(file)
    if not isinstance(document, CommentedMap):
        check.problems.append(
            Problem(
                file,
                1,
                1,
                "(top)",
                "must be a mapping of version, facade, backends, routes, default",
            )
        )
        raise RoutingFileError(check.problems)
    check.mapping(document, None, None, "(top)", TOP_KEYS)
    version = document.get("version", 1)
    if version != 1:
        check.at(document, "version", "version", f"{version!r} is not supported; use 1")

    settings = _settings(check, document)
    backends = _backends(check, document, settings)
    routes = _routes(check, document, backends, settings)
    default = _default(check, document, backends, routes)
    local = local_stack(check, document)
    sync = sync_streams(check, document, backends)
    api = api_settings(check, document)
    routes = _rollouts(check, document, routes, backends, sync)
    backends = _canaries(check, document, backends, sync, Path(file).resolve().parent)
    for route in routes:
        if route.auth and api.jwt is None:
            check.at(document, "api" if "api" in document else "routes", f"routes[{route.name}]"
                     ".auth", "needs api.jwt (issuer and audience) for its authorizer")  # fmt: skip

    if check.problems:
        raise RoutingFileError(sorted(check.problems, key=lambda p: (p.line, p.column)))
    assert default is not None
    return RoutingTable(file, settings, backends, tuple(routes), default, local, sync, api)


def _rollouts(
    check: _Checker,
    document: CommentedMap,
    routes: list[Route],
    backends: dict[str, Backend],
    sync: tuple[SyncStream, ...],
) -> list[Route]:
    """The routes with their ``rollout:`` plans, read once the sync streams are known."""
    node = document.get("routes")
    if not isinstance(node, CommentedSeq):
        return routes
    by_name = {r.name: r for r in routes}
    for index, spec in enumerate(node):
        if not isinstance(spec, CommentedMap) or "rollout" not in spec:
            continue
        route = by_name.get(str(spec.get("name")))
        if route is None:
            continue
        path = f"routes[{index}] ({route.name})"
        plan = rollout_plan(check, spec["rollout"], spec, path, route, backends, sync)
        if plan is not None:
            by_name[route.name] = replace(route, rollout=plan)
    return [by_name[r.name] for r in routes]


def _canaries(
    check: _Checker,
    document: CommentedMap,
    backends: dict[str, Backend],
    sync: tuple[SyncStream, ...],
    base: Path,
) -> dict[str, Backend]:
    """The backends with their ``canary:`` blocks (a new version of a Lambda function)."""
    node = document.get("backends")
    if not isinstance(node, CommentedMap):
        return backends
    found = dict(backends)
    stages: dict[tuple[str, str] | str, str] = {}  # (api, stage) and log groups → backend
    for name, spec in node.items():
        backend = backends.get(str(name))
        if backend is None or not isinstance(spec, CommentedMap) or "canary" not in spec:
            continue
        canary = version_canary(
            check, spec["canary"], spec, f"backends.{name}", backend, sync, base
        )
        if canary is None:
            continue
        stage = canary.stage
        if stage is not None:
            # one stage's access-log metrics are one canary's: a second on the same API and
            # stage (or log group) would be judged on the other's traffic too
            taken = stages.get((stage.api, stage.stage)) or stages.get(stage.access_logs)
            if taken is not None:
                check.at(
                    spec["canary"],
                    "stage",
                    f"backends.{name}.canary.stage",
                    f"API {stage.api!r} stage {stage.stage!r} (access logs "
                    f"{stage.access_logs!r}) is already backend {taken!r}'s stage canary: "
                    "each needs an API, a stage and a log group of its own",
                )
                continue
            stages[stage.api, stage.stage] = stages[stage.access_logs] = backend.name
        found[backend.name] = replace(backend, canary=canary)
    return found


# -- facade settings -------------------------------------------------------------------


def _host_port(
    check: _Checker, node: CommentedMap, where: str, example: str, lowest: int
) -> tuple[str, int] | None:
    """``node["listen"]`` as (host, port), or None after naming the problem."""
    host, _, port = str(node["listen"]).rpartition(":")
    if not host or not port.isdigit() or not lowest <= int(port) < 65536:
        check.at(node, "listen", where, f"{node['listen']!r}: use HOST:PORT, e.g. {example}")
        return None
    return host.strip("[]"), int(port)


def _settings(check: _Checker, document: CommentedMap) -> FacadeSettings:
    if "facade" not in document:
        return FacadeSettings()
    node = check.mapping(document["facade"], document, "facade", "facade", FACADE_KEYS)
    if node is None:
        return FacadeSettings()
    kw: dict[str, Any] = {}
    defaults = FacadeSettings()

    if "listen" in node:
        found = _host_port(check, node, "facade.listen", "127.0.0.1:8000", lowest=1)
        if found is not None:
            kw["listen_host"], kw["listen_port"] = found
    for key in ("backend_header", "route_header"):
        if key in node:
            problem = patterns.header_name_problem(str(node[key]))
            if problem:
                check.at(node, key, f"facade.{key}", f"{node[key]!r} {problem}")
            else:
                kw[key] = str(node[key])
    if "sticky_cookie" in node:
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", str(node["sticky_cookie"])):
            check.at(
                node,
                "sticky_cookie",
                "facade.sticky_cookie",
                "must be 1-64 letters, digits, '_' or '-'",
            )
        else:
            kw["sticky_cookie"] = str(node["sticky_cookie"])
    for key, low, high in (("max_body_bytes", 1, 2**31), ("max_rules", 1, 1000)):
        if key in node:
            value = node[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                check.at(
                    node,
                    key,
                    f"facade.{key}",
                    f"{value!r}: must be a whole number from {low} to {high}",
                )
            else:
                kw[key] = value
    if "access_log" in node:
        if not isinstance(node["access_log"], bool):
            check.at(node, "access_log", "facade.access_log", "must be true or false")
        else:
            kw["access_log"] = node["access_log"]
    if "audit_log" in node:
        kw["audit_log"] = str(node["audit_log"])
    if "override" in node:
        override = check.mapping(
            node["override"], node, "override", "facade.override", ("enabled", "header")
        )
        if override is not None:
            enabled = override.get("enabled", False)
            header = str(override.get("header", defaults.override.header))
            if not isinstance(enabled, bool):
                check.at(override, "enabled", "facade.override.enabled", "must be true or false")
            problem = patterns.header_name_problem(header)
            if problem:
                check.at(override, "header", "facade.override.header", f"{header!r} {problem}")
            kw["override"] = Override(enabled=enabled is True, header=header.lower())
    if "timeouts" in node:
        timeouts = check.mapping(
            node["timeouts"], node, "timeouts", "facade.timeouts", ("connect", "read", "lambda")
        )
        if timeouts is not None:
            values: dict[str, float] = {}
            for key in ("connect", "read", "lambda"):
                if key in timeouts:
                    value = timeouts[key]
                    if (
                        isinstance(value, bool)
                        or not isinstance(value, int | float)
                        or not (0 < value <= 900)
                    ):
                        check.at(
                            timeouts,
                            key,
                            f"facade.timeouts.{key}",
                            f"{value!r}: seconds, more than 0 and at most 900",
                        )
                    else:
                        values["lambda_" if key == "lambda" else key] = float(value)
            kw["timeouts"] = Timeouts(**values)
    if "admin" in node:
        admin = check.mapping(
            node["admin"], node, "admin", "facade.admin", ("token_env", "token_file", "listen")
        )
        if admin is not None:
            if "token_env" in admin:
                kw["admin_token_env"] = str(admin["token_env"])
            if "token_file" in admin:
                kw["admin_token_file"] = str(admin["token_file"])
            if "listen" in admin:
                example = "127.0.0.1:9901 (port 0: any)"
                found = _host_port(check, admin, "facade.admin.listen", example, lowest=0)
                if found is not None:
                    kw["admin_host"], kw["admin_port"] = found
    if "cookie_secret" in node:
        secret = check.mapping(
            node["cookie_secret"], node, "cookie_secret", "facade.cookie_secret", ("env", "file")
        )
        if secret is not None:
            if "env" in secret:
                kw["cookie_secret_env"] = str(secret["env"])
            if "file" in secret:
                kw["cookie_secret_file"] = str(secret["file"])
    if "limits" in node:
        kw["limits"] = _limits(check, node)
    return FacadeSettings(**kw)


def _limits(check: _Checker, node: CommentedMap) -> Limits:
    limits = check.mapping(node["limits"], node, "limits", "facade.limits", tuple(LIMIT_RANGES))
    if limits is None:
        return Limits()
    values: dict[str, Any] = {}
    for key, (low, high, whole) in LIMIT_RANGES.items():
        if key not in limits:
            continue
        value = limits[key]
        kinds = int if whole else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            what = "a whole number" if whole else "seconds"
            check.at(
                limits,
                key,
                f"facade.limits.{key}",
                f"{value!r}: {what} from {low:g} to {high:g}",
            )
        else:
            values[key] = value if whole else float(value)
    return Limits(**values)


# -- backends --------------------------------------------------------------------------


def _backends(
    check: _Checker, document: CommentedMap, settings: FacadeSettings
) -> dict[str, Backend]:
    if "backends" not in document:
        check.problems.append(
            Problem(check.file, 1, 1, "backends", "is required: declare at least the monolith")
        )
        return {}
    node = document["backends"]
    if not isinstance(node, CommentedMap) or not node:
        check.at(document, "backends", "backends", "must be a non-empty mapping of name → backend")
        return {}
    backends: dict[str, Backend] = {}
    for name, spec in node.items():
        path = f"backends.{name}"
        if not NAME.match(str(name)):
            check.at(
                node,
                name,
                path,
                "backend names are 1-32 lower-case letters, digits and "
                "'-' (they become AWS target-group names)",
                value=False,
            )
        body = check.mapping(spec, node, name, path, BACKEND_KEYS)
        if body is None:
            continue
        kind_value = body.get("kind")
        try:
            kind = BackendKind(kind_value)
        except ValueError:
            allowed = ", ".join(k.value for k in BackendKind)
            check.at(
                body if "kind" in body else node,
                "kind" if "kind" in body else name,
                f"{path}.kind",
                f"{_show(kind_value)} is not a backend kind; use one of: {allowed}",
            )
            continue
        url = body.get("url")
        handler = body.get("handler")
        if url is not None:
            parts = urlsplit(str(url))
            if parts.scheme != "http" or not parts.hostname or parts.port is None:
                check.at(
                    body,
                    "url",
                    f"{path}.url",
                    f"{url!r}: use http://HOST:PORT (the local address of this backend)",
                )
        if handler is not None and not HANDLER.match(str(handler)):
            check.at(
                body, "handler", f"{path}.handler", f"{handler!r}: use 'package.module:function'"
            )
        if kind is BackendKind.LAMBDA:
            if (url is None) == (handler is None):
                check.at(
                    node,
                    name,
                    path,
                    "a lambda backend needs exactly one of 'handler' "
                    "(run in-process) or 'url' (an emulator)",
                )
        elif url is None:
            check.at(node, name, path, f"a {kind.value} backend needs 'url'")
        elif handler is not None:
            check.at(body, "handler", f"{path}.handler", "only lambda backends have a handler")
        multi = body.get("multi_value_headers", False)
        if not isinstance(multi, bool):
            check.at(
                body, "multi_value_headers", f"{path}.multi_value_headers", "must be true or false"
            )
        aws: dict[str, object] = {}
        if "aws" in body:
            aws_node = check.mapping(body["aws"], body, "aws", f"{path}.aws", AWS_KEYS[kind])
            if aws_node is not None:
                aws = {str(k): _plain(v) for k, v in aws_node.items()}
                _check_aws(check, aws_node, path, kind)
        local = local_run(check, body, path, in_facade=handler is not None)
        faults = _faults(check, body, path, settings.timeouts, in_facade=handler is not None)
        backends[str(name)] = Backend(
            name=str(name),
            kind=kind,
            url=str(url).rstrip("/") if url is not None else None,
            handler=str(handler) if handler is not None else None,
            multi_value_headers=multi is True,
            aws=aws,
            local=local,
            faults=faults,
        )
    if not any(b.kind is BackendKind.MONOLITH for b in backends.values()):
        check.at(
            document,
            "backends",
            "backends",
            "declare the monolith: one backend needs kind: monolith",
        )
    return backends


def _plain(value: Any) -> object:
    if isinstance(value, CommentedMap):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, CommentedSeq):
        return [_plain(v) for v in value]
    return value


def _check_aws(check: _Checker, node: CommentedMap, path: str, kind: BackendKind) -> None:
    for key in ("port", "container_port"):
        if key in node:
            value = node[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                check.at(node, key, f"{path}.aws.{key}", f"{value!r}: a port, 1-65535")
    if "instances" in node:
        for i, instance in enumerate(_as_list(node["instances"])):
            if not re.match(r"^i-[0-9a-f]{8,17}$", str(instance)):
                check.at(
                    node,
                    "instances",
                    f"{path}.aws.instances[{i}]",
                    f"{instance!r} is not an EC2 instance id (i-0123456789abcdef0)",
                )
    if "target_group_arn" in node and not str(node["target_group_arn"]).startswith(
        "arn:aws:elasticloadbalancing:"
    ):
        check.at(
            node,
            "target_group_arn",
            f"{path}.aws.target_group_arn",
            "must be a target-group ARN (arn:aws:elasticloadbalancing:...)",
        )
    if kind is BackendKind.LAMBDA and "function" not in node:
        check.at(node, None, f"{path}.aws", "a lambda backend's aws block needs 'function'")
    for key, (low, high) in AWS_RANGES.get(kind, {}).items():
        value = node.get(key)
        if key in node and (isinstance(value, bool) or not isinstance(value, int)
                            or not low <= value <= high):  # fmt: skip
            check.at(node, key, f"{path}.aws.{key}", f"{value!r}: AWS allows {low}-{high}")
    if kind is BackendKind.ECS and "cpu" in node and node["cpu"] not in FARGATE_CPU:
        check.at(node, "cpu", f"{path}.aws.cpu", f"{node['cpu']!r}: Fargate CPU units, one of "
                 + ", ".join(map(str, FARGATE_CPU)))  # fmt: skip
    if "environment" in node and not (
        isinstance(node["environment"], CommentedMap)
        and all(isinstance(v, str | int | float) for v in node["environment"].values())
    ):
        check.at(
            node, "environment", f"{path}.aws.environment", "a mapping of NAME: value (strings)"
        )
    if kind is BackendKind.ECS:
        for key in ("cluster", "service", "container_port"):
            if key not in node:
                check.at(node, None, f"{path}.aws", f"an ecs backend's aws block needs '{key}'")


# -- routes ----------------------------------------------------------------------------


def _routes(
    check: _Checker, document: CommentedMap, backends: dict[str, Backend], settings: FacadeSettings
) -> list[Route]:
    node = document.get("routes", [])
    if node is None:
        return []
    if not isinstance(node, CommentedSeq):
        check.at(document, "routes", "routes", "must be a list of routes")
        return []
    if len(node) > settings.max_rules:
        check.at(
            document,
            "routes",
            "routes",
            f"{len(node)} routes; an ALB listener has at most "
            f"{settings.max_rules} rules (facade.max_rules, the account's quota)",
        )
    routes: list[Route] = []
    names: dict[str, int] = {}
    priorities: dict[int, str] = {}
    previous = 0
    for index, spec in enumerate(node):
        path = f"routes[{index}]"
        body = check.mapping(spec, node, index, path, ROUTE_KEYS)
        if body is None:
            continue
        name = body.get("name")
        if not isinstance(name, str) or not NAME.match(name) or name == DEFAULT_ROUTE:
            check.at(
                body if "name" in body else node,
                "name" if "name" in body else index,
                f"{path}.name",
                f"{_show(name)}: every route needs a name of 1-32 "
                f"lower-case letters, digits and '-' (not '{DEFAULT_ROUTE}')",
            )
            name = f"#{index}"
        elif name in names:
            check.at(
                body,
                "name",
                f"{path}.name",
                f"{name!r} is already the name of routes[{names[name]}]",
            )
        names.setdefault(name, index)
        path = f"routes[{index}] ({name})"

        priority = body.get("priority", (index + 1) * 10)
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not (PRIORITY_MIN <= priority <= PRIORITY_MAX)
        ):
            check.at(
                body,
                "priority",
                f"{path}.priority",
                f"{priority!r}: ALB rule priorities "
                f"are whole numbers {PRIORITY_MIN}-{PRIORITY_MAX}",
            )
            priority = previous + 1
        elif priority in priorities:
            check.at(
                body,
                "priority",
                f"{path}.priority",
                f"{priority} is already the priority of route {priorities[priority]!r}",
            )
        elif priority <= previous:
            check.at(
                body,
                "priority",
                f"{path}.priority",
                f"{priority} must be greater than the "
                f"previous route's ({previous}): routes are listed in the order they are "
                "evaluated",
            )
        priorities.setdefault(priority, name)
        previous = max(previous, priority)

        match = _match(check, body, path)
        fixed = _fixed_response(check, body, path) if "fixed_response" in body else None
        targets = () if fixed is not None else _targets(check, body, path, backends)
        stickiness = _stickiness(check, body, path)
        stable_key = _stable_key(check, body, path)
        if stickiness and stable_key:
            check.at(
                body,
                "stable_key",
                f"{path}.stable_key",
                "use either stickiness (a cookie "
                "set on first visit) or stable_key (a hash of the user), not both",
            )
        line, _ = _position(node, index, value=True)
        auth = body.get("auth", False)
        if not isinstance(auth, bool):
            check.at(body, "auth", f"{path}.auth", f"{_show(auth)}: true or false")
        if fixed is not None and (stickiness or stable_key or "targets" in body):
            check.at(
                body,
                "fixed_response",
                f"{path}.fixed_response",
                "a route answers either a fixed response or forwards to targets "
                "(with stickiness or stable_key), not both",
            )
        shadow = _shadow(check, body, path, backends) if "shadow" in body else None
        if shadow is not None and fixed is not None:
            check.at(body, "shadow", f"{path}.shadow", "a fixed response has nothing to shadow")
        routes.append(
            Route(
                name,
                priority,
                match,
                targets,
                stickiness,
                stable_key,
                line,
                auth=auth is True,
                fixed=fixed,
                shadow=shadow,
            )
        )
    return routes


def _fixed_response(check: _Checker, body: CommentedMap, path: str) -> FixedResponse | None:
    where = f"{path}.fixed_response"
    node = check.mapping(
        body["fixed_response"], body, "fixed_response", where, ("status", "content_type", "body")
    )
    if node is None:
        return None
    status = node.get("status")
    if (
        isinstance(status, bool)
        or not isinstance(status, int)
        or not (200 <= status <= 299 or 400 <= status <= 599)
    ):
        check.at(
            node if "status" in node else body,
            "status" if "status" in node else "fixed_response",
            f"{where}.status",
            f"{_show(status)}: an HTTP status ALB can answer (2XX, 4XX or 5XX)",
        )
        status = 404
    content_type = str(node.get("content_type", "text/plain"))
    if content_type not in FIXED_CONTENT_TYPES:
        check.at(
            node,
            "content_type",
            f"{where}.content_type",
            f"{content_type!r}: ALB allows " + ", ".join(FIXED_CONTENT_TYPES),
        )
    text = node.get("body", "")
    if not isinstance(text, str) or len(text) > FIXED_BODY_MAX:
        check.at(
            node,
            "body",
            f"{where}.body",
            f"a string of at most {FIXED_BODY_MAX} characters (ALB's limit)",
        )
        text = ""
    return FixedResponse(status, content_type, text)


def _match(check: _Checker, body: CommentedMap, path: str) -> Match:
    if "match" not in body:
        check.at(
            body,
            None,
            f"{path}.match",
            "is required: an ALB rule needs at least one "
            "condition (use 'default' for everything else)",
        )
        return Match()
    node = check.mapping(body["match"], body, "match", f"{path}.match", MATCH_KEYS)
    if node is None:
        return Match()
    paths: list[str] = []
    wildcard_count = 0
    for i, value in enumerate(_as_list(node.get("paths", []))):
        value = str(value)
        problem = patterns.path_pattern_problem(value)
        if problem:
            check.at(node, "paths", f"{path}.match.paths[{i}]", f"{value!r} {problem}")
        paths.append(value)
        wildcard_count += patterns.wildcards(value)
    methods: list[str] = []
    for i, value in enumerate(_as_list(node.get("methods", []))):
        value = str(value)
        problem = patterns.method_problem(value)
        if problem:
            check.at(node, "methods", f"{path}.match.methods[{i}]", f"{value!r} {problem}")
        methods.append(value)
    headers: list[HeaderCondition] = []
    if "headers" in node:
        header_node = node["headers"]
        if not isinstance(header_node, CommentedMap):
            check.at(
                node,
                "headers",
                f"{path}.match.headers",
                "must map header names to a value or a list of values",
            )
        else:
            for header, values in header_node.items():
                hpath = f"{path}.match.headers.{header}"
                problem = patterns.header_name_problem(str(header))
                if problem:
                    check.at(header_node, header, hpath, f"{header!r} {problem}", value=False)
                value_list = [str(v) for v in _as_list(values)]
                for value in value_list:
                    problem = patterns.header_value_problem(value)
                    if problem:
                        check.at(header_node, header, hpath, f"{value!r} {problem}")
                    wildcard_count += patterns.wildcards(value)
                if len(value_list) > MAX_EVALUATIONS_PER_CONDITION:
                    check.at(header_node, header, hpath, _too_many(len(value_list)))
                headers.append(HeaderCondition(str(header).lower(), tuple(value_list)))
    for key, items in (("paths", paths), ("methods", methods)):
        if len(items) > MAX_EVALUATIONS_PER_CONDITION:
            check.at(node, key, f"{path}.match.{key}", _too_many(len(items)))
    match = Match(tuple(paths), tuple(methods), tuple(headers))
    if match.evaluations == 0:
        check.at(body, "match", f"{path}.match", "needs at least one of paths, methods, headers")
    elif match.evaluations > MAX_EVALUATIONS_PER_RULE:
        check.at(
            body,
            "match",
            f"{path}.match",
            f"{match.evaluations} match values in one rule; "
            f"ALB allows at most {MAX_EVALUATIONS_PER_RULE} per rule: split the route",
        )
    if wildcard_count > MAX_WILDCARDS_PER_RULE:
        check.at(
            body,
            "match",
            f"{path}.match",
            f"{wildcard_count} wildcards in one rule; ALB "
            f"allows at most {MAX_WILDCARDS_PER_RULE} per rule",
        )
    return match


def _too_many(count: int) -> str:
    return (
        f"{count} values; ALB allows at most {MAX_EVALUATIONS_PER_CONDITION} per condition: "
        "split the route or use a wildcard"
    )


def _targets(
    check: _Checker, body: Any, path: str, backends: dict[str, Backend], key: str = "targets"
) -> tuple[Target, ...]:
    if key not in body:
        check.at(body, None, f"{path}.{key}", "is required: backend → percent")
        return ()
    node = body[key]
    if isinstance(node, str):  # shorthand: one backend takes everything
        node_items: Iterator[tuple[Any, Any]] = iter([(node, 100)])
        container, at_key = body, key
        is_map = False
    elif isinstance(node, CommentedMap) and node:
        node_items = iter(node.items())
        container, at_key = node, None
        is_map = True
    else:
        check.at(
            body,
            key,
            f"{path}.{key}",
            "must map backend names to percentages (or name one backend)",
        )
        return ()
    targets: list[Target] = []

    def where(name: Any) -> tuple[Any, Any]:
        return (container, name) if is_map else (container, at_key)

    for name, percent in node_items:
        tpath = f"{path}.{key}.{name}"
        if name not in backends:
            known = ", ".join(backends) or "none declared"
            hint = difflib.get_close_matches(str(name), list(backends), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            check.at(
                *where(name),
                tpath,
                f"no backend named {name!r} (backends: {known}){suggestion}",
                value=not is_map,  # point at the name itself
            )
        share = parse_share(percent)
        if share is None:
            check.at(
                *where(name), tpath, f"{percent!r}: a percentage from 0 to 100 in steps of 0.1"
            )
            share = 0
        targets.append(Target(str(name), share))
    if len(targets) > MAX_TARGETS:
        check.at(
            body,
            key,
            f"{path}.{key}",
            f"{len(targets)} targets; an ALB forward action "
            f"takes at most {MAX_TARGETS} target groups",
        )
    total = sum(t.share for t in targets)
    if targets and total != SHARE_TOTAL:
        check.at(
            body,
            key,
            f"{path}.{key}",
            f"percentages add up to {total / 10:g}; they must add up to 100",
        )
    return tuple(targets)


def _stickiness(check: _Checker, body: CommentedMap, path: str) -> Stickiness | None:
    if "stickiness" not in body or body["stickiness"] in (None, False):
        return None
    node = body["stickiness"]
    duration = node.get("duration") if isinstance(node, CommentedMap) else node
    if isinstance(node, CommentedMap):
        check.mapping(node, body, "stickiness", f"{path}.stickiness", ("duration",))
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int)
        or not (STICKY_MIN <= duration <= STICKY_MAX)
    ):
        check.at(
            body,
            "stickiness",
            f"{path}.stickiness",
            f"duration {duration!r}: whole "
            f"seconds from {STICKY_MIN} to {STICKY_MAX} (7 days), as ALB allows",
        )
        return None
    return Stickiness(duration)


def _stable_key(check: _Checker, body: CommentedMap, path: str) -> StableKey | None:
    if "stable_key" not in body:
        return None
    node = check.mapping(
        body["stable_key"], body, "stable_key", f"{path}.stable_key", ("header", "cookie")
    )
    if node is None:
        return None
    if len([k for k in ("header", "cookie") if k in node]) != 1:
        check.at(body, "stable_key", f"{path}.stable_key", "name exactly one of header or cookie")
        return None
    if "header" in node:
        problem = patterns.header_name_problem(str(node["header"]))
        if problem:
            check.at(node, "header", f"{path}.stable_key.header", f"{node['header']!r} {problem}")
        return StableKey(header=str(node["header"]).lower())
    return StableKey(cookie=str(node["cookie"]))


def _default(
    check: _Checker, document: CommentedMap, backends: dict[str, Backend], routes: list[Route]
) -> Route | None:
    if "default" not in document:
        monolith = next((b for b in backends.values() if b.kind is BackendKind.MONOLITH), None)
        if monolith is None:
            return None
        return Route(DEFAULT_ROUTE, PRIORITY_MAX + 1, Match(), (Target(monolith.name, 1000),))
    node = document["default"]
    if isinstance(node, str):
        targets = _targets(check, document, "default", backends, key="default")
        stickiness = None
    else:
        body = check.mapping(node, document, "default", "default", ("targets", "stickiness"))
        if body is None:
            return None
        targets = _targets(check, body, "default", backends)
        stickiness = _stickiness(check, body, "default")
    line, _ = _position(document, "default", value=True)
    return Route(DEFAULT_ROUTE, PRIORITY_MAX + 1, Match(), targets, stickiness, None, line)


__all__ = ["load_table", "parse_share", "parse_table"]
