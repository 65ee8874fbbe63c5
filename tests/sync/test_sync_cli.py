"""``strangler sync backfill | verify [--repair] | status`` over a real stream: the
monolith (PostgreSQL) → outbox relay → SQS stand-in → catalog consumer → its database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from facade import aws_local
from tests.servers import SAMPLE_ROUTING, MonolithServer, manage, psql_url, scratch_database

pytestmark = pytest.mark.postgresql


# the monolith publishes and applies orders: its two-way pair (which this test's routing
# file leaves out) reaches the commands `strangler sync` runs on its side
PAIR_ENV = SAMPLE_ROUTING.sync_environment("monolith")


def strangler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facade.cli", *args], env={**os.environ, **PAIR_ENV},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


class Stream:
    def __init__(self, tmp: Path, endpoints: aws_local.Endpoints, source: str, target: str) -> None:
        self.routing = tmp / "routing.yaml"
        self.routing.write_text(
            "version: 1\n"
            "backends:\n"
            "  monolith:\n    kind: monolith\n    url: 'http://127.0.0.1:1'\n"
            f"    local: {{env: {{DATABASE_URL: '{source}'}}}}\n"
            "  catalog:\n    kind: ecs\n    url: 'http://127.0.0.1:2'\n"
            f"    local: {{env: {{CATALOG_DATABASE_URL: '{target}'}}}}\n"
            "routes: []\n"
            "sync:\n  catalog:\n    from: monolith\n    to: catalog\n"
            f"    queue: t-{uuid.uuid4().hex[:10]}.fifo\n"
            "    visibility_timeout: 5\n"
            "    commands:\n"
            "      backfill: '{python} -m monolith.manage outbox_backfill'\n"
            "      emit: '{python} -m monolith.manage outbox_emit'\n"
            "      outbox_status: '{python} -m monolith.manage sync_status --json'\n"
            "      source_digest: '{python} -m monolith.manage sync_digest'\n"
            "      target_digest: '{python} -m extracted.catalog.manage sync_digest'\n"
            f"local:\n  aws: {{endpoint: '{endpoints.aws}', sqs: '{endpoints.sqs}'}}\n"
        )
        self.env = {
            **endpoints.environment(),
            **PAIR_ENV,
            "STRANGLER_ROUTING": str(self.routing),
        }
        self.source, self.target = source, target
        self.workers: dict[str, subprocess.Popen[str]] = {}
        self.output: list[str] = []

    def start(self, name: str) -> None:
        module, command, env = {
            "relay": ("monolith.manage", "outbox_relay", {"DATABASE_URL": self.source}),
            "consumer": (
                "extracted.catalog.manage", "inbox_consumer", {"CATALOG_DATABASE_URL": self.target}
            ),
        }[name]  # fmt: skip
        self.workers[name] = subprocess.Popen(
            [sys.executable, "-m", module, command, "--routing", str(self.routing)],
            env={**os.environ, **self.env, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        worker = self.workers.pop(name)
        worker.send_signal(sig)
        code = worker.wait(timeout=30)
        self.output.append(worker.stdout.read() if worker.stdout else "")
        return code

    def status(self) -> dict[str, Any]:
        result = strangler("sync", "status", "-f", str(self.routing), "--json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout)["catalog"])

    def wait_delivered(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            figures = self.status()
            if not (figures["outbox_pending"] or figures["queued"] or figures["in_flight"]):
                return
            assert time.monotonic() < deadline, figures
            time.sleep(0.2)

    def verify(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return strangler("sync", "verify", "catalog", "-f", str(self.routing), *extra)


@pytest.fixture
def stream(
    tmp_path: Path, aws_endpoints: aws_local.Endpoints, pg_monolith: MonolithServer
) -> Iterator[Stream]:
    with scratch_database("strangler_cli") as target:
        manage("migrate", "--noinput", "-v", "0", env={"CATALOG_DATABASE_URL": target},
               module="extracted.catalog.manage")  # fmt: skip
        created = Stream(tmp_path, aws_endpoints, pg_monolith.database_url, target)
        # the queues, as the stand-ins' set-up hook creates them for `strangler up`
        hook = subprocess.run(
            [sys.executable, "-c", "from facade.sync.queues import create_local_queues as c; c()"],
            env={**os.environ, **created.env}, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert hook.returncode == 0, hook.stderr
        created.start("relay")
        created.start("consumer")
        try:
            yield created
        finally:
            codes = [created.stop(name) for name in ("relay", "consumer")]
            assert codes == [0, 0], created.output


def test_backfill_then_verify_then_repair(stream: Stream) -> None:
    before = stream.verify("--json")
    assert before.returncode == 1
    report = json.loads(before.stdout)
    assert report["entities"]["catalog.Product"]["target_rows"] == 0
    assert report["drift"] == sum(e["source_rows"] for e in report["entities"].values())

    for entity in ("catalog.Category", "catalog.Product", "catalog.StockLevel"):
        backfilled = strangler("sync", "backfill", "catalog", entity, "-f", str(stream.routing))
        assert backfilled.returncode == 0, backfilled.stderr
        assert "rows/s" in backfilled.stdout + backfilled.stderr
    # an interrupted run resumes after the last chunk it wrote
    with psycopg.connect(psql_url(stream.source), autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM catalog_product ORDER BY id")]
        conn.execute(
            "UPDATE strangler_sync_backfillprogress SET last_id = %s, rows = 100,"
            " finished_at = NULL WHERE label = 'catalog.Product'",
            (ids[99],),
        )
    resumed = strangler("sync", "backfill", "catalog", "catalog.Product", "-f", str(stream.routing))
    assert f"backfilled {len(ids) - 100} catalog.Product rows" in resumed.stdout
    stream.wait_delivered()
    clean = stream.verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 drifted" in clean.stdout

    with psycopg.connect(psql_url(stream.target), autocommit=True) as conn:
        product = conn.execute("SELECT min(id) FROM catalog_product").fetchone()
        assert product is not None
        conn.execute("UPDATE catalog_product SET name = 'tampered' WHERE id = %s", product)
        conn.execute("DELETE FROM catalog_stocklevel WHERE product_id = %s", product)
    drifted = stream.verify("--json")
    assert drifted.returncode == 1
    entities = json.loads(drifted.stdout)["entities"]
    assert entities["catalog.Product"]["drifted"] == [str(product[0])]
    assert len(entities["catalog.StockLevel"]["drifted"]) == 1

    repaired = stream.verify("--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    figures = stream.status()
    assert figures["dead_letters"] == 0
    assert figures["outbox_pending"] == 0
    assert figures["outbox_published"] > 0
    scraped = strangler("sync", "status", "--prometheus", "-f", str(stream.routing)).stdout
    assert 'strangler_sync_outbox_pending_events{stream="catalog"} 0.0' in scraped
    assert 'strangler_sync_dead_letters{stream="catalog"} 0.0' in scraped
    published = 'strangler_sync_outbox_published_events_total{stream="catalog"} '
    assert float(scraped.split(published)[1].split()[0]) == figures["outbox_published"]


def test_relay_and_consumer_killed_mid_stream_end_clean(stream: Stream) -> None:
    for _ in range(4):  # ~1,000 events, so that the kills land while work is in flight
        for entity in ("catalog.Category", "catalog.Product", "catalog.StockLevel"):
            args = ("sync", "backfill", "catalog", entity, "--restart", "-f", str(stream.routing))
            assert strangler(*args).returncode == 0
    deadline = time.monotonic() + 60
    while stream.status()["outbox_published"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert stream.stop("relay", signal.SIGKILL) == -signal.SIGKILL
    assert stream.stop("consumer", signal.SIGKILL) == -signal.SIGKILL
    stream.start("relay")
    stream.start("consumer")
    stream.wait_delivered()
    clean = stream.verify()
    assert clean.returncode == 0, clean.stdout + clean.stderr
