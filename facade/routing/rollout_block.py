"""A route's ``rollout:`` block: the plan ``strangler rollout`` walks (``facade.rollout``).

Read after the routes and the sync streams, since a plan names both: the backend the
route moves to must be one of its targets, and the sync gate's streams must exist.
Every problem is reported with its line like the rest of the file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from facade.rollout.plan import (
    Analysis,
    CriticalGuard,
    ErrorCheck,
    Gates,
    LatencyCheck,
    OnInconclusive,
    PreCheck,
    Provider,
    RolloutPlan,
    ShadowGate,
    Step,
    SyncGate,
)
from facade.routing.checker import Checker, show
from facade.routing.model import SHARE_TOTAL, Backend, BackendKind, Route, SyncStream

PLAN_KEYS = (
    "steps",
    "step",
    "bake",
    "interval",
    "on_inconclusive",
    "pre_checks",
    "analysis",
    "gates",
)
ROLLOUT_KEYS = ("to", "from", *PLAN_KEYS)
STEP_KEYS = ("weight", "min_time", "min_sample", "max_wait")
PRE_CHECK_KEYS = ("name", "run", "timeout")
ANALYSIS_KEYS = (
    "provider",
    "prometheus",
    "false_alarm",
    "errors",
    "latency",
    "critical",
    "provider_errors",
    "watch",
)
GATE_KEYS = ("sync", "shadow")
SYNC_GATE_KEYS = ("streams", "max_lag", "dead_letters", "max_conflict_rate", "verify_sample")
SHADOW_GATE_KEYS = ("max_difference", "min_sample")
DAY = 86_400.0
MIN_WATCH = 0.2  # seconds between two looks at the least (the controller polls at 0.2 s)


def _number(
    check: Checker,
    node: CommentedMap,
    key: str,
    path: str,
    default: float,
    low: float,
    high: float,
    *,
    whole: bool = False,
    above: bool = False,
) -> float:
    """``node[key]`` as a number in [low, high] (``above``: strictly above low), or the
    default after naming the problem."""
    if key not in node:
        return default
    value = node[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and whole and not isinstance(value, int):
        ok = False
    if ok and not (low < value <= high if above else low <= value <= high):
        ok = False
    if not ok:
        kind = "a whole number" if whole else "a number"
        lower = f"above {low:g}" if above else f"from {low:g}"
        check.at(node, key, f"{path}.{key}", f"{show(value)}: {kind} {lower} to {high:g}")
        return default
    return float(value)


E = TypeVar("E", bound=StrEnum)


def choice(
    check: Checker, node: CommentedMap, key: str, path: str, kind: type[E], default: E
) -> E | None:
    """``node[key]`` as one of ``kind``'s values (``default`` when absent), or None after
    naming the problem."""
    if key not in node:
        return default
    try:
        return kind(str(node[key]))
    except ValueError:
        check.at(node, key, f"{path}.{key}", f"{show(node[key])}: one of {', '.join(kind)}")
        return None


def _weight(value: Any) -> int | None:
    from facade.routing.loader import parse_share  # the loader imports this module

    share = parse_share(value)
    return share if share else None


def _steps(check: Checker, body: CommentedMap, path: str) -> tuple[Step, ...]:
    defaults = Step(1)
    if "step" in body:
        node = check.mapping(body["step"], body, "step", f"{path}.step", STEP_KEYS[1:])
        if node is not None:
            defaults = _step_fields(check, node, f"{path}.step", defaults)
    given = body.get("steps")
    if not isinstance(given, CommentedSeq) or not given:
        check.at(
            body,
            "steps" if "steps" in body else "to",
            f"{path}.steps",
            f"{show(given)}: a list of the new backend's weights, e.g. [1, 10, 50, 100]",
        )
        return ()
    steps: list[Step] = []
    for index, item in enumerate(given):
        where = f"{path}.steps[{index}]"
        if isinstance(item, CommentedMap):
            node = check.mapping(item, given, index, where, STEP_KEYS)
            if node is None:
                continue
            share = _weight(node.get("weight"))
            if share is None:
                check.at(
                    node,
                    "weight" if "weight" in node else index,
                    f"{where}.weight",
                    f"{show(node.get('weight'))}: a percentage above 0, at most 100, "
                    "in steps of 0.1",
                )
                continue
            step = _step_fields(check, node, where, defaults)
            steps.append(Step(share, step.min_time, step.min_sample, step.max_wait))
        else:
            share = _weight(item)
            if share is None:
                check.at(
                    given,
                    index,
                    where,
                    f"{show(item)}: a percentage above 0, at most "
                    "100, in steps of 0.1 (ALB's weights express 0.1 %)",
                )
                continue
            steps.append(Step(share, defaults.min_time, defaults.min_sample, defaults.max_wait))
        if len(steps) > 1 and steps[-1].share <= steps[-2].share:
            check.at(
                given,
                index,
                where,
                f"{steps[-1].percent:g} %: each step must be above "
                f"the one before ({steps[-2].percent:g} %)",
            )
    if steps and steps[-1].share != SHARE_TOTAL:
        check.at(
            given,
            len(given) - 1,
            f"{path}.steps",
            f"the last step is {steps[-1].percent:g} %: a rollout ends at 100",
        )
    return tuple(steps)


def _step_fields(check: Checker, node: CommentedMap, path: str, defaults: Step) -> Step:
    min_time = _number(check, node, "min_time", path, defaults.min_time, 0, DAY)
    min_sample = _number(
        check, node, "min_sample", path, defaults.min_sample, 0, 10_000_000, whole=True
    )
    max_wait = _number(check, node, "max_wait", path, defaults.max_wait, 0, 7 * DAY, above=True)
    if ("max_wait" in node or "min_time" in node) and max_wait < min_time:
        check.at(
            node,
            "max_wait" if "max_wait" in node else "min_time",
            f"{path}.max_wait",
            f"{max_wait:g}s is shorter than min_time ({min_time:g}s)",
        )
    return Step(defaults.share, min_time, int(min_sample), max_wait)


def _pre_checks(check: Checker, body: CommentedMap, path: str) -> tuple[PreCheck, ...]:
    given = body.get("pre_checks")
    if given is None:
        return ()
    if not isinstance(given, CommentedSeq):
        check.at(body, "pre_checks", f"{path}.pre_checks", "a list of {name, run, timeout}")
        return ()
    found: list[PreCheck] = []
    for index, item in enumerate(given):
        where = f"{path}.pre_checks[{index}]"
        node = check.mapping(item, given, index, where, PRE_CHECK_KEYS)
        if node is None:
            continue
        name, run = node.get("name", f"check {index + 1}"), node.get("run")
        if not isinstance(run, str) or not run.strip():
            check.at(
                node,
                "run" if "run" in node else "name",
                f"{where}.run",
                f"{show(run)}: a command; {{url}} is the new backend's address",
            )
            continue
        timeout = _number(check, node, "timeout", where, 300.0, 0, 3 * 3600, above=True)
        found.append(PreCheck(str(name), run, timeout))
    return tuple(found)


def _analysis(check: Checker, body: CommentedMap, path: str) -> Analysis:
    if "analysis" not in body:
        return Analysis()
    where = f"{path}.analysis"
    node = check.mapping(body["analysis"], body, "analysis", where, ANALYSIS_KEYS)
    if node is None:
        return Analysis()
    provider = choice(check, node, "provider", where, Provider, Provider.FACADE) or Provider.FACADE
    prometheus = node.get("prometheus")
    if prometheus is not None and not str(prometheus).startswith(("http://", "https://")):
        check.at(
            node,
            "prometheus",
            f"{where}.prometheus",
            f"{show(prometheus)}: the Prometheus server's http(s) URL",
        )
        prometheus = None
    if provider is Provider.PROMETHEUS and prometheus is None and "prometheus" not in node:
        check.at(
            node,
            "provider",
            f"{where}.prometheus",
            "provider prometheus needs prometheus: http://HOST:9090",
        )
    false_alarm = _number(check, node, "false_alarm", where, 0.01, 0, 0.2, above=True)
    errors = ErrorCheck()
    if "errors" in node:
        sub = check.mapping(node["errors"], node, "errors", f"{where}.errors", ("max_increase",))
        if sub is not None:
            errors = ErrorCheck(
                _number(check, sub, "max_increase", f"{where}.errors", 1.0, 0, 100, above=True)
            )
    latency: LatencyCheck | None = LatencyCheck()
    if "latency" in node:
        if node["latency"] is None or node["latency"] is False:
            latency = None
        else:
            keys = ("quantile", "max_increase")
            sub = check.mapping(node["latency"], node, "latency", f"{where}.latency", keys)
            if sub is not None:
                latency = LatencyCheck(
                    _number(check, sub, "quantile", f"{where}.latency", 0.95, 0.5, 0.999),
                    _number(
                        check, sub, "max_increase", f"{where}.latency", 25.0, 0, 1000, above=True
                    ),
                )
    critical = CriticalGuard()
    if "critical" in node:
        keys = ("errors", "min_requests")
        sub = check.mapping(node["critical"], node, "critical", f"{where}.critical", keys)
        if sub is not None:
            critical = CriticalGuard(
                _number(check, sub, "errors", f"{where}.critical", 5.0, 0, 100, above=True),
                int(
                    _number(
                        check,
                        sub,
                        "min_requests",
                        f"{where}.critical",
                        20,
                        1,
                        1_000_000,
                        whole=True,
                    )
                ),
            )
    provider_errors = _number(check, node, "provider_errors", where, 3, 1, 1000, whole=True)
    watch = _number(check, node, "watch", where, 1.0, 0, 3600) if "watch" in node else None
    return Analysis(
        provider,
        str(prometheus) if prometheus else None,
        false_alarm,
        errors,
        latency,
        critical,
        int(provider_errors),
        watch,
    )


def _gates(
    check: Checker, body: CommentedMap, path: str, streams: tuple[SyncStream, ...], to: str
) -> Gates:
    if "gates" not in body:
        return Gates()
    where = f"{path}.gates"
    node = check.mapping(body["gates"], body, "gates", where, GATE_KEYS)
    if node is None:
        return Gates()
    sync = shadow = None
    if "sync" in node:
        sub = check.mapping(node["sync"], node, "sync", f"{where}.sync", SYNC_GATE_KEYS)
        if sub is not None:
            names: list[str] = []
            known = {s.name for s in streams}
            given = sub.get("streams")
            if given is not None:
                if not isinstance(given, CommentedSeq):
                    check.at(sub, "streams", f"{where}.sync.streams", "a list of stream names")
                else:
                    for index, name in enumerate(given):
                        if name not in known:
                            check.at(
                                given,
                                index,
                                f"{where}.sync.streams[{index}]",
                                f"{show(name)} is not a sync stream; streams: "
                                f"{', '.join(sorted(known)) or 'none'}",
                            )
                        else:
                            names.append(str(name))
            else:
                names = [s.name for s in streams if to in (s.source, s.target)]
                if not names:
                    check.at(
                        node,
                        "sync",
                        f"{where}.sync",
                        f"no sync stream has {to!r} as a "
                        "side; name the streams to watch with streams: [...]",
                    )
            w = f"{where}.sync"
            sync = SyncGate(
                tuple(names),
                _number(check, sub, "max_lag", w, 30.0, 0, DAY, above=True),
                int(_number(check, sub, "dead_letters", w, 0, 0, 1_000_000, whole=True)),
                _number(check, sub, "max_conflict_rate", w, 5.0, 0, 100),
                int(_number(check, sub, "verify_sample", w, 50, 0, 100_000, whole=True)),
            )
    if "shadow" in node:
        sub = check.mapping(node["shadow"], node, "shadow", f"{where}.shadow", SHADOW_GATE_KEYS)
        if sub is not None:
            w = f"{where}.shadow"
            shadow = ShadowGate(
                _number(check, sub, "max_difference", w, 1.0, 0, 100),
                int(_number(check, sub, "min_sample", w, 500, 1, 100_000_000, whole=True)),
            )
    return Gates(sync, shadow)


def rollout_plan(
    check: Checker,
    node: Any,
    parent: CommentedMap,
    path: str,
    route: Route,
    backends: dict[str, Backend],
    streams: tuple[SyncStream, ...],
) -> RolloutPlan | None:
    where = f"{path}.rollout"
    body = check.mapping(node, parent, "rollout", where, ROLLOUT_KEYS)
    if body is None:
        return None
    if route.fixed is not None:
        check.at(parent, "rollout", where, "a deny rule (fixed_response) has nothing to roll out")
        return None
    listed = [t.backend for t in route.targets]
    to = body.get("to")
    if not isinstance(to, str) or to not in listed:
        check.at(
            body if "to" in body else parent,
            "to" if "to" in body else "rollout",
            f"{where}.to",
            f"{show(to)}: the backend the route moves to, one of its "
            f"targets ({', '.join(listed)}); list it in targets at 0 to start from "
            "nothing",
        )
        return None
    others = [b for b in listed if b != to]
    given_from = body.get("from")
    if given_from is not None:
        if given_from not in others:
            check.at(
                body,
                "from",
                f"{where}.from",
                f"{show(given_from)}: one of the route's "
                f"other targets ({', '.join(others) or 'none'})",
            )
            return None
        baseline = str(given_from)
    else:
        monoliths = [b for b in others if backends[b].kind is BackendKind.MONOLITH]
        if len(others) == 1:
            baseline = others[0]
        elif len(monoliths) == 1:
            baseline = monoliths[0]
        else:
            check.at(
                body,
                "to",
                f"{where}.from",
                f"the route has {len(others)} other targets "
                f"({', '.join(others) or 'none'}): name the baseline with from:",
            )
            return None
    if len(others) > 1:
        check.at(
            body,
            "to",
            f"{where}.to",
            "a rollout moves a route between two backends; "
            f"the route also lists {', '.join(b for b in others if b != baseline)}: "
            "take them out of targets first",
        )
    return plan_body(check, body, where, to, baseline, streams, to)


def plan_body(
    check: Checker,
    body: CommentedMap,
    where: str,
    to: str,
    baseline: str,
    streams: tuple[SyncStream, ...],
    side: str,
) -> RolloutPlan:
    """The keys every rollout plan shares (steps, step, bake, interval, on_inconclusive,
    pre_checks, analysis, gates) — of a route's ``rollout:`` block or a Lambda
    backend's ``canary:`` block; ``side`` is the backend whose sync streams the sync
    gate watches by default."""
    steps = _steps(check, body, where)
    pause = OnInconclusive.PAUSE
    on = choice(check, body, "on_inconclusive", where, OnInconclusive, pause) or pause
    line = getattr(getattr(body, "lc", None), "line", -1) + 1
    interval = _number(check, body, "interval", where, 10.0, 1, 3600)
    analysis = _analysis(check, body, where)
    watch = analysis.watch
    if watch and not MIN_WATCH <= watch < interval:
        check.at(
            body["analysis"],
            "watch",
            f"{where}.analysis.watch",
            f"{show(watch)}: 0 (judge at analyses only) or from {MIN_WATCH:g} s to below "
            f"the interval ({interval:g} s)",
        )
    return RolloutPlan(
        to=to,
        steps=steps,
        bake=_number(check, body, "bake", where, 300.0, 0, 7 * DAY),
        interval=interval,
        on_inconclusive=on,
        pre_checks=_pre_checks(check, body, where),
        analysis=analysis,
        gates=_gates(check, body, where, streams, side),
        line=line,
        baseline=baseline,
    )


__all__ = ["PLAN_KEYS", "choice", "plan_body", "rollout_plan"]
