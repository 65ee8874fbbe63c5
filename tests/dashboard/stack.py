"""The sample's routing.yaml served by a real facade, for the dashboard's tests: its
backends replaced by real local servers (the monolith and the catalog service by echo
servers, the orders Lambda by an echo handler run in the facade; the catalog route
shadowed to the monolith), its sync streams on
a real SQS-API server (moto) with a few messages waiting and one dead letter, and live
traffic through the public listener while the block runs."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from ruamel.yaml import YAML

from facade import aws_local
from facade.routing.loader import load_table
from facade.sync import sqs
from facade.sync.queues import create_queues
from tests.facade.proxy import Proxy, proxy
from tests.facade.upstream import upstream

SAMPLE = Path(__file__).resolve().parents[2] / "routing.yaml"
TOKEN = "dashboard-test-token"


@dataclass
class Stack:
    routing: Path
    facade: Proxy
    token: str
    statuses: list[int]

    @property
    def page(self) -> str:
        return f"{self.facade.admin_url}/__facade/dashboard"

    def audit(self) -> Path:
        return self.routing.parent / load_table(self.routing).settings.audit_log


def sample_routing(directory: Path, monolith: str, catalog: str, aws: aws_local.Endpoints) -> Path:
    yaml = YAML(typ="rt")
    document = yaml.load(SAMPLE.read_text())
    backends = document["backends"]
    backends["monolith"]["url"] = monolith
    backends["catalog"]["url"] = catalog
    backends["orders"]["handler"] = "tests.facade.lambda_handlers:echo"
    # the catalog's reads shadowed to the monolith: its answers name another backend
    catalog_route = next(r for r in document["routes"] if r["name"] == "catalog")
    catalog_route["shadow"] = {"to": "monolith", "store": "var/shadow.sqlite3"}
    local = document["local"]["aws"]
    local["endpoint"] = aws.aws
    local["sqs"] = aws.sqs or aws.aws
    local["dynamodb"] = aws.dynamodb
    for stream in document["sync"].values():
        stream.pop("commands", None)  # the sides' status commands need the shop's databases
    out = io.StringIO()
    yaml.dump(document, out)
    path = directory / "routing.yaml"
    path.write_text(out.getvalue())
    return path


def _queues(routing: Path) -> None:
    table = load_table(routing)
    aws = table.local.aws
    assert aws is not None
    client = sqs.client(aws.sqs or aws.endpoint, **aws_local.CREDENTIALS)
    for stream in table.sync:
        url, dead = create_queues(client, stream)
        if stream.name == "orders-to-lambda":
            for n in range(3):
                client.send_message(
                    QueueUrl=url,
                    MessageBody="{}",
                    MessageGroupId="o",
                    MessageDeduplicationId=str(n),
                )
        if stream.name == "orders-to-monolith":
            client.send_message(
                QueueUrl=dead, MessageBody="{}", MessageGroupId="o", MessageDeduplicationId="d"
            )


@contextmanager
def traffic(url: str) -> Iterator[list[int]]:
    """About 60 requests a second over the sample's routes, each from a new client (no
    sticky cookie), until the block ends; yields the statuses seen."""
    statuses: list[int] = []
    stop = threading.Event()
    paths = ["/api/orders/7"] * 6 + ["/api/catalog/products/"] * 3 + ["/account/"] * 9
    paths.append("/status/503")  # the monolith fails a tenth of the default route's requests

    def run(seed: int) -> None:
        chooser = random.Random(seed)
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.wait(0.03):
                client.cookies.clear()
                try:
                    statuses.append(client.get(chooser.choice(paths)).status_code)
                except httpx.HTTPError:
                    statuses.append(0)

    threads = [threading.Thread(target=run, args=(seed,), daemon=True) for seed in range(2)]
    for thread in threads:
        thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)


@contextmanager
def sample_stack(directory: Path, *, workers: int = 1) -> Iterator[Stack]:
    with ExitStack() as stack:
        aws = stack.enter_context(aws_local.running(dynamodb_port=None, sqs_port=None))
        monolith = stack.enter_context(upstream("monolith"))
        catalog = stack.enter_context(upstream("catalog", delay=0.004))
        routing = sample_routing(directory, monolith.url, catalog.url, aws)
        _queues(routing)
        env = {"STRANGLER_ADMIN_TOKEN": TOKEN, **aws.environment()}
        facade = stack.enter_context(proxy(routing, workers=workers, env=env))
        statuses = stack.enter_context(traffic(facade.url))
        yield Stack(routing, facade, TOKEN, statuses)


__all__ = ["TOKEN", "Stack", "sample_routing", "sample_stack", "traffic"]
