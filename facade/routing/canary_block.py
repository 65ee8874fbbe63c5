"""A Lambda backend's ``canary:`` block: a new version of the function, canaried by the
same plan as a route's rollout (``facade.rollout.versions``).

Read after the sync streams, since the plan's sync gate names them. What AWS enforces
and its local stand-in does not is enforced here, with the line of the problem:

* ``mechanism: alias`` — the alias' ``RoutingConfig.AdditionalVersionWeights`` splits
  between its version and **one** other (at most 2 versions), both published versions
  (digits: an alias with a routing configuration cannot point at ``$LATEST``), and
  different; the weight is 0.0-1.0, which 0-100 % in steps of 0.1 always is;
* ``mechanism: stage`` — the stage variable names the baseline's alias and the canary's
  ``stageVariableOverrides`` the new one: Lambda alias names (not all digits, at most
  128 of letters, digits, ``-`` and ``_``), a stage name and a variable name API Gateway
  accepts; ``percentTraffic`` is 0.0-100.0. The stage's access-log group (``log_group``,
  by default ``/strangler/API/STAGE``) is a CloudWatch Logs group name with room for the
  ``/Canary`` API Gateway appends for its canary's group (letters, digits, ``.-_/#``, at
  most 512 characters with it); ``log_retention`` is one of the retention periods
  CloudWatch Logs offers.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from facade.rollout.plan import LocalVersion, Mechanism, Provider, StageCanary, VersionCanary
from facade.routing.checker import CALLABLE, Checker, show
from facade.routing.model import Backend, BackendKind, SyncStream
from facade.routing.rollout_block import PLAN_KEYS, choice, plan_body

CANARY_KEYS = ("mechanism", "from", "to", "weight", "local", "stage", *PLAN_KEYS)
STAGE_KEYS = ("api", "name", "variable", "log_group", "log_retention")
LOCAL_KEYS = ("handler", "code")
VERSION = re.compile(r"^[0-9]{1,10}$")  # a published version (AdditionalVersionWeights' keys)
ALIAS = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")  # Lambda's alias names
STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
VARIABLE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
API_NAME = re.compile(r"^[A-Za-z0-9 _.-]{1,128}$")
LOG_GROUP = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")  # CloudWatch Logs' group names
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)  # fmt: skip


def _label(check: Checker, body: CommentedMap, key: str, where: str, mechanism: Mechanism) -> str:
    value = body.get(key)
    text = "" if value is None or isinstance(value, bool) else str(value)
    if mechanism is Mechanism.ALIAS and not VERSION.match(text):
        check.at(
            body,
            key if key in body else None,
            f"{where}.{key}",
            f"{show(value)}: a published version number of the function (an alias with "
            "routing splits between two numbered versions, never $LATEST)",
        )
        return ""
    if mechanism is Mechanism.STAGE and not ALIAS.match(text):
        check.at(
            body,
            key if key in body else None,
            f"{where}.{key}",
            f"{show(value)}: a Lambda alias name (1-128 letters, digits, '-', '_', not all "
            "digits) that the stage variable names",
        )
        return ""
    return text


def _local(
    check: Checker, body: CommentedMap, where: str, labels: tuple[str, ...], base: Path
) -> dict[str, LocalVersion]:
    found: dict[str, LocalVersion] = {}
    node = body.get("local")
    if node is None:
        check.at(
            body,
            None,
            f"{where}.local",
            f"name how the facade runs {' and '.join(labels)} here: "
            "local: {VERSION: module:function, or {handler: module:function, code: DIR}}",
        )
        return found
    if not isinstance(node, CommentedMap):
        check.at(body, "local", f"{where}.local", f"{show(node)}: a mapping of version → handler")
        return found
    for name, spec in node.items():
        label = str(name)
        path = f"{where}.local.{label}"
        code: str | None = None
        handler: Any = spec
        if isinstance(spec, CommentedMap):
            sub = check.mapping(spec, node, name, path, LOCAL_KEYS)
            if sub is None:
                continue
            handler = sub.get("handler")
            if "code" in sub:
                folder = Path(str(sub["code"]))
                folder = folder if folder.is_absolute() else base / folder
                if not folder.is_dir():
                    check.at(sub, "code", f"{path}.code", f"{str(folder)!r} is not a directory")
                code = str(folder)
        if not isinstance(handler, str) or not CALLABLE.match(handler):
            check.at(node, name, path, f"{show(handler)}: use 'package.module:function'")
            continue
        found[label] = LocalVersion(handler, code)
    for label in labels:
        if label and label not in found:
            check.at(
                body,
                "local",
                f"{where}.local",
                f"no handler for {label!r}: the facade runs both versions "
                f"({', '.join(dict.fromkeys(labels))})",
            )
    return found


def _stage(check: Checker, body: CommentedMap, where: str) -> StageCanary | None:
    node = check.mapping(body.get("stage"), body, "stage", f"{where}.stage", STAGE_KEYS)
    if node is None:
        return None
    api, name = node.get("api"), str(node.get("name", "live"))
    variable = str(node.get("variable", "alias"))
    ok = True
    if not isinstance(api, str) or not API_NAME.match(api):
        check.at(
            node,
            "api" if "api" in node else None,
            f"{where}.stage.api",
            f"{show(api)}: the REST API's name",
        )
        ok = False
    if not STAGE.match(name):
        check.at(
            node,
            "name",
            f"{where}.stage.name",
            f"{name!r}: a stage name (letters, digits, '-', '_')",
        )
        ok = False
    if not VARIABLE.match(variable):
        check.at(
            node,
            "variable",
            f"{where}.stage.variable",
            f"{variable!r}: a stage variable name (letters, digits, '_')",
        )
        ok = False
    retention = node.get("log_retention", 30)
    if type(retention) is not int or retention not in RETENTION_DAYS:
        check.at(
            node,
            "log_retention",
            f"{where}.stage.log_retention",
            f"{show(retention)}: days CloudWatch Logs keeps the access logs, one of "
            f"{', '.join(map(str, RETENTION_DAYS))}",
        )
        ok = False
    if not ok:
        return None
    group = node.get("log_group")
    found = StageCanary(str(api), name, variable, "" if group is None else str(group), retention)
    if not LOG_GROUP.match(found.canary_access_logs) or found.access_logs.startswith("aws/"):
        given = "log_group" in node
        check.at(
            node,
            "log_group" if given else "api",
            f"{where}.stage.log_group",
            f"{found.access_logs!r}"
            + ("" if given else " (the default, from the API's and the stage's names)")
            + ": not a CloudWatch Logs group name, or no room left for the '/Canary' API "
            "Gateway appends for its canary's group (letters, digits, '.', '-', '_', '/', "
            "'#'; at most 512 characters with it; never starting with 'aws/', which AWS "
            "keeps for its own groups)" + ("" if given else "; name one with stage.log_group"),
        )
        return None
    return found


def version_canary(
    check: Checker,
    node: Any,
    parent: CommentedMap,
    path: str,
    backend: Backend,
    streams: tuple[SyncStream, ...],
    base: Path,
) -> VersionCanary | None:
    where = f"{path}.canary"
    body = check.mapping(node, parent, "canary", where, CANARY_KEYS)
    if body is None:
        return None
    if backend.kind is not BackendKind.LAMBDA:
        check.at(parent, "canary", where, "only a lambda backend has versions to canary")
        return None
    mechanism = choice(check, body, "mechanism", where, Mechanism, Mechanism.ALIAS)
    if mechanism is None:
        return None
    baseline = _label(check, body, "from", where, mechanism)
    canary = _label(check, body, "to", where, mechanism)
    from facade.routing.loader import parse_share  # the loader imports this module

    share = parse_share(body.get("weight", 0))
    if share is None:
        check.at(
            body,
            "weight",
            f"{where}.weight",
            f"{show(body.get('weight'))}: the new version's share now, a percentage "
            "from 0 to 100 in steps of 0.1",
        )
        share = 0
    if baseline and baseline == canary and share:
        check.at(
            body,
            "weight",
            f"{where}.weight",
            f"{share / 10:g} %: from and to are the same ({baseline}), so nothing is "
            "under canary; set to: to the new version",
        )
    stage = None
    if mechanism is Mechanism.STAGE:
        stage = _stage(check, body, where)
    elif "stage" in body:
        check.at(
            body,
            "stage",
            f"{where}.stage",
            "only mechanism: stage has a stage; the alias splits by itself",
        )
    local: dict[str, LocalVersion] = {}
    if backend.handler is not None:
        local = _local(check, body, where, (baseline, canary), base)
    elif "local" in body:
        check.at(
            body,
            "local",
            f"{where}.local",
            "the backend runs at its url, not in the facade: no local versions",
        )
    plan = plan_body(check, body, where, canary, baseline, streams, backend.name)
    if plan.analysis.provider is Provider.PROMETHEUS:
        check.at(
            body,
            "analysis",
            f"{where}.analysis.provider",
            "a version canary reads facade (the facade's per-version series) or "
            "cloudwatch (by ExecutedVersion, or the stage's canary metrics)",
        )
    if plan.gates.shadow is not None:
        check.at(
            body,
            "gates",
            f"{where}.gates.shadow",
            "the shadow gate compares a route's backends, not a function's versions",
        )
        plan = replace(plan, gates=replace(plan.gates, shadow=None))
    line = getattr(getattr(body, "lc", None), "line", -1) + 1
    if not baseline or not canary:
        return None
    return VersionCanary(backend.name, mechanism, baseline, canary, share, local, plan, stage, line)


__all__ = ["version_canary"]
