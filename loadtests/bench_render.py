"""Time to render every AWS output of a 100-route table.

    .venv/bin/python loadtests/bench_render.py [--routes 100] [--repeat 5] [--json out.json]

A generated routing file of ``--routes`` routes (prefix and exact paths, methods and
header conditions, splits, sticky and authenticated routes, a Lambda backend, an ECS
backend, two sync streams) is rendered to the ALB CloudFormation, the API Gateway
OpenAPI document and its CloudFormation, the SAM template, the ECS template and the IAM
policy, each dumped as YAML — what ``strangler render`` does. The in-run reference is
reading and validating the same file (``load_table``); medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facade.aws import alb, apigw, cloudformation, ecs, iam, sam
from facade.routing.loader import load_table
from facade.routing.model import RoutingTable

LISTENER = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    "listener/app/shop/0123456789abcdef/fedcba9876543210"
)


def routing_text(routes: int) -> str:
    lines = [
        "version: 1",
        "backends:",
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:9', "
        "aws: {instances: [i-0123456789abcdef0], port: 8000, health_check: /healthz}}",
        "  fn: {kind: lambda, handler: 'pkg.api:handler', "
        "aws: {function: shop-fn, alias: live, code: dist/fn.zip}}",
        "  svc: {kind: ecs, url: 'http://127.0.0.1:8', "
        "aws: {cluster: shop, service: svc, container_port: 8000, health_check: /healthz}}",
        "facade: {max_rules: 1000}",
        "routes:",
    ]
    for i in range(routes):
        targets = (
            "{fn: 100}",
            "{monolith: 90, fn: 10}",
            "{svc: 100}",
            "{monolith: 66.7, svc: 33.3}",
        )[i % 4]
        extra = ", stickiness: {duration: 600}" if i % 4 == 1 else ""
        extra += ", auth: true" if i % 6 == 0 else ""
        match = f"paths: ['/api/r{i}', '/api/r{i}/*']"
        match += ", methods: [GET, POST]" if i % 5 == 0 else ""
        match += ", headers: {X-Canary: ['on']}" if i % 7 == 3 and i % 6 else ""
        lines.append(f"  - {{name: r{i}, match: {{{match}}}, targets: {targets}{extra}}}")
    lines += [
        "default: monolith",
        "api: {name: shop, jwt: {issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/x', "
        "audience: [c]}, throttling: {burst: 100, rate: 50}}",
        "sync:",
        "  to-fn: {from: monolith, to: fn, queue: to-fn.fifo, consumer: 'pkg.sync:handler'}",
        "  to-monolith: {from: fn, to: monolith, queue: to-monolith.fifo}",
    ]
    return "\n".join(lines) + "\n"


def outputs(table: RoutingTable) -> list[str]:
    dump = cloudformation.dump
    return [
        dump(cloudformation.template(alb.desired(table), "bench.yaml"), "yaml"),
        dump(apigw.openapi(table), "yaml"),
        dump(apigw.template(table, "bench.yaml"), "yaml"),
        dump(sam.template(table, "bench.yaml"), "yaml"),
        dump(ecs.template(table, "bench.yaml"), "yaml"),
        json.dumps(iam.policy(LISTENER, "strangler")),
    ]


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "routing.yaml"
        path.write_text(routing_text(args.routes))
        load_s, table = timed(lambda: load_table(path), args.repeat)
        render_s, rendered = timed(lambda: outputs(table), args.repeat)
    size = sum(len(text) for text in rendered)
    print(f"{'step':<28} {'ms':>8} {'x reading the file':>20}")
    print(f"{'read and validate':<28} {load_s * 1e3:>8.1f} {1:>20.2f}")
    print(f"{'render all 6 outputs':<28} {render_s * 1e3:>8.1f} {render_s / load_s:>20.2f}")
    print(f"{args.routes} routes; {size / 1024:.0f} KiB of templates")
    if args.json:
        args.json.write_text(json.dumps({
            "routes": args.routes, "read_ms": round(load_s * 1e3, 2),
            "render_ms": round(render_s * 1e3, 2), "ratio_to_read": round(render_s / load_s, 2),
            "output_kib": round(size / 1024, 1),
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
