"""Which SQS stand-in keeps up with the data sync: moto's server or fauxqs.

    .venv/bin/python loadtests/bench_sqs.py [--duration 10] [--drain 60] [--json out.json]

The sync's traffic shape, on a FIFO queue: one producer sends batches of 10 as fast as
the stand-in takes them (20 message groups, as the outbox relay does with per-entity
groups) while one consumer receives up to 10 at a time and deletes them in a batch. For
``--duration`` seconds both run; then the producer stops and the consumer drains what is
left, for at most ``--drain`` seconds. Printed per stand-in: messages/s sent and
consumed while both ran, the backlog when the producer stopped, and how long the drain
took (or how many were left) — a stand-in whose calls slow down as its queue grows
shows it here. moto runs as ``python -m facade.aws_local``; fauxqs from ``npm ci``
(skipped without it). Everything listens on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from facade import aws_local

GROUPS = 20


@contextmanager
def stand_in(name: str) -> Iterator[str]:
    with ExitStack() as stack:
        if name == "moto":
            endpoints = stack.enter_context(aws_local.running(dynamodb_port=None, sqs_port=None))
            yield endpoints.aws
        else:
            port = aws_local.free_port()
            argv = aws_local.fauxqs_argv("127.0.0.1", port)
            yield stack.enter_context(aws_local.node_server("fauxqs", argv, "127.0.0.1", port))


def _client(endpoint: str) -> Any:
    config = Config(retries={"max_attempts": 2}, max_pool_connections=8)
    return boto3.client("sqs", endpoint_url=endpoint, config=config, **aws_local.CREDENTIALS)


def measure(endpoint: str, duration: float, drain: float) -> dict[str, Any]:
    client = _client(endpoint)
    url = client.create_queue(
        QueueName="bench.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
    )["QueueUrl"]
    sent = [0]
    consumed = [0]
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        producer = _client(endpoint)
        serial = 0
        while producing.is_set():
            entries = []
            for _ in range(10):
                serial += 1
                entries.append(
                    {
                        "Id": str(serial % 10),
                        "MessageBody": json.dumps({"n": serial, "pad": "x" * 200}),
                        "MessageGroupId": f"g{serial % GROUPS}",
                        "MessageDeduplicationId": str(serial),
                    }
                )
            producer.send_message_batch(QueueUrl=url, Entries=entries)
            sent[0] += len(entries)

    def consume(deadline: float) -> None:
        consumer = _client(endpoint)
        while time.monotonic() < deadline:
            if not producing.is_set() and consumed[0] >= sent[0]:
                return
            answer = consumer.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = answer.get("Messages", [])
            if messages:
                consumer.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
                consumed[0] += len(messages)

    started = time.monotonic()
    consumer = threading.Thread(target=consume, args=(started + duration + drain,))
    producer = threading.Thread(target=produce)
    consumer.start()
    producer.start()
    time.sleep(duration)
    producing.clear()
    producer.join()
    stopped = time.monotonic()
    sent_while_running, consumed_while_running = sent[0], consumed[0]
    consumer.join()
    drained = consumed[0] >= sent[0]
    return {
        "sent_per_s": sent_while_running / (stopped - started),
        "consumed_per_s": consumed_while_running / (stopped - started),
        "backlog_at_stop": sent_while_running - consumed_while_running,
        "drain_s": time.monotonic() - stopped if drained else None,
        "left_after_drain": sent[0] - consumed[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = ["moto"] + (["fauxqs"] if aws_local.fauxqs_command() else [])
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        with stand_in(name) as endpoint:
            results[name] = measure(endpoint, args.duration, args.drain)
    print(f"FIFO queue, batches of 10, {GROUPS} groups, {args.duration:g}s producing")
    print(f"{'stand-in':<8} {'sent/s':>8} {'consumed/s':>10} {'backlog':>8}  drain")
    for name, r in results.items():
        drain = (
            f"{r['drain_s']:.1f}s"
            if r["drain_s"] is not None
            else f"{r['left_after_drain']} left after {args.drain:g}s"
        )
        print(
            f"{name:<8} {r['sent_per_s']:8.0f} {r['consumed_per_s']:10.0f} "
            f"{r['backlog_at_stop']:8d}  {drain}"
        )
    if "fauxqs" in results:
        ratio = results["fauxqs"]["consumed_per_s"] / max(results["moto"]["consumed_per_s"], 1e-9)
        print(f"fauxqs/moto consumed/s: {ratio:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
