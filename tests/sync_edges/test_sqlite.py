"""Edge cases of the sync on SQLite, the database `make demo` runs by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_relay_does_not_hold_the_sqlite_write_lock_while_it_waits_for_sqs(
    tmp_path: Path,
) -> None:
    """Relay.pass_once opens a transaction (BEGIN IMMEDIATE on SQLite: the database's one
    write lock), then calls SendMessageBatch, then marks the rows, then commits. While SQS
    is slow — botocore's adaptive retries of a throttled or unreachable endpoint take up
    to six attempts with 5 s connect timeouts — no other process can write: every shop
    request that writes waits, and after the 30 s busy timeout fails with "database is
    locked". On PostgreSQL only the relay's own outbox rows are locked. The network
    call must happen outside the write transaction (sending twice is already safe:
    SQS deduplicates by body hash and consumers compare versions)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'monolith.sqlite3'}",
        "PYTHONPATH": str(ROOT),
    }
    probe = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("relay_lock_probe.py"))],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    outcome = json.loads(probe.stdout.strip().splitlines()[-1])
    assert outcome["other_writer"] == "wrote", (
        f"while the relay waited for SQS another writer got: {outcome}"
    )
