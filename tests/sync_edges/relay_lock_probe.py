"""Run by test_sqlite.py in a process of its own, on a SQLite file (the default
of `make demo`): does the relay hold the database's write lock while it waits for SQS?

Prints one JSON line: whether another connection could write during the send."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monolith.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)

from facade.sync.django.relay import Relay  # noqa: E402
from tests.monolith.conftest import make_product  # noqa: E402

make_product("LOCK", 5)  # changes waiting in the outbox
in_send = threading.Event()
release = threading.Event()


class SlowSqs:
    """SQS answering after a while (botocore retrying a throttled or unreachable
    endpoint: adaptive mode, 6 attempts, 5 s connect timeout each)."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        in_send.set()
        release.wait(10)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


relay = Relay(SlowSqs(), {"catalog": "https://sqs.example/q.fifo"})
worker = threading.Thread(target=lambda: relay.pass_once("catalog"))
worker.start()
assert in_send.wait(10)
path = settings.DATABASES["default"]["NAME"]
other = sqlite3.connect(path, timeout=1.0, isolation_level=None)  # a web request's write
started = time.monotonic()
try:
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    outcome = {"other_writer": "wrote", "waited_s": round(time.monotonic() - started, 2)}
except sqlite3.OperationalError as exc:
    outcome = {"other_writer": str(exc), "waited_s": round(time.monotonic() - started, 2)}
release.set()
worker.join()
print(json.dumps(outcome))
sys.exit(0)
