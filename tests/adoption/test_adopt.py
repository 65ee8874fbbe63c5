"""A Django project that is not the sample shop adopts the sync from the toolkit's wheel,
following the README's "Adopt it in your own monolith" step by step: the wheel installed
into a fresh virtualenv, the app in INSTALLED_APPS, one model published to a queue on
the SQS stand-in, a consumer applying it on the other side, ``strangler sync verify``
clean. Without extras the wheel brings in neither Django nor locust nor moto."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from facade import aws_local

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "notes_site"


def run(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in argv], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the toolkit's wheel, without extras."""
    where = tmp_path_factory.mktemp("adopt")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-build-isolation", "--wheel-dir", where / "dist", ROOT)  # fmt: skip
    uv = Path(sys.executable).with_name("uv")
    run(uv, "venv", "--quiet", "--python", sys.executable, where / "venv")
    (wheel,) = (where / "dist").glob("strangler-*.whl")
    python = where / "venv" / "bin" / "python"
    # the same versions as this repository's lock file, wherever they overlap
    constraints = where / "constraints.txt"
    constraints.write_text(
        "".join(
            line.split(" ")[0] + "\n"
            for line in (ROOT / "requirements.lock").read_text().splitlines()
            if "==" in line and not line.startswith(" ")
        )
    )
    run(uv, "pip", "install", "--quiet", "--python", python, "-c", constraints, wheel)
    (where / "wheel").write_text(str(wheel))
    (where / "constraints").write_text(str(constraints))
    return where


def installed(python: Path) -> set[str]:
    uv = Path(sys.executable).with_name("uv")
    listing = json.loads(run(uv, "pip", "list", "--python", python, "--format", "json"))
    return {entry["name"].lower() for entry in listing}


def test_the_wheel_without_extras_brings_neither_django_nor_locust_nor_moto(venv: Path) -> None:
    found = installed(venv / "venv" / "bin" / "python")
    assert "strangler" in found
    assert {"boto3", "click", "ruamel-yaml"} <= found
    assert not found & {"django", "locust", "moto", "cfn-lint", "flask", "werkzeug"}
    # the command line works without them, and nothing of the sample shop came along
    run(venv / "venv" / "bin" / "strangler", "sync", "--help", env={"PATH": "/usr/bin:/bin"})
    shop = subprocess.run(
        [str(venv / "venv" / "bin" / "python"), "-c", "import monolith"],
        capture_output=True, text=True, check=False, cwd=venv,
    )  # fmt: skip
    assert "No module named 'monolith'" in shop.stderr


def test_the_wheel_ships_the_dashboards_page_and_libraries(venv: Path) -> None:
    """Users of the wheel never run npm: htmx, uPlot and the page's own files are in it."""
    wheel = Path((venv / "wheel").read_text())
    static = ROOT / "facade" / "dashboard" / "static"
    files = [path for path in static.rglob("*") if path.is_file()]
    assert any(path.name == "htmx.min.js" for path in files)
    with zipfile.ZipFile(wheel) as archive:
        for path in files:
            name = f"facade/dashboard/static/{path.relative_to(static).as_posix()}"
            assert archive.read(name) == path.read_bytes(), name


def test_a_django_project_of_its_own_syncs_a_model_and_verifies_clean(
    venv: Path, tmp_path: Path, aws_endpoints: aws_local.Endpoints
) -> None:
    # 1. install the toolkit with its Django extra
    python = venv / "venv" / "bin" / "python"
    strangler = venv / "venv" / "bin" / "strangler"
    uv = Path(sys.executable).with_name("uv")
    wheel, constraints = (venv / "wheel").read_text(), (venv / "constraints").read_text()
    run(uv, "pip", "install", "--quiet", "--python", python, "-c", constraints,
        f"strangler[django] @ file://{wheel}")  # fmt: skip
    assert "django" in installed(python)
    # 2. the project (INSTALLED_APPS and STRANGLER_SYNC: notes_site/settings.py)
    site = tmp_path / "site"
    shutil.copytree(SITE, site)
    # 3. routing.yaml: both sides, the stream, and the commands verify runs on each side
    queue = f"notes-{uuid.uuid4().hex[:8]}.fifo"
    manage = f"{{python}} {site / 'manage.py'}"
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        "version: 1\n"
        "backends:\n"
        "  monolith:\n    kind: monolith\n    url: http://127.0.0.1:8001\n"
        f"    local: {{env: {{NOTES_SIDE: monolith, NOTES_DATABASE: '{tmp_path / 'a.db'}'}}}}\n"
        "  notes-service:\n    kind: ecs\n    url: http://127.0.0.1:8002\n"
        "    local: {env: {NOTES_SIDE: notes-service, "
        f"NOTES_DATABASE: '{tmp_path / 'b.db'}'}}}}\n"
        "routes: []\n"
        "default: monolith\n"
        "sync:\n"
        "  notes:\n"
        "    from: monolith\n"
        "    to: notes-service\n"
        f"    queue: {queue}\n"
        "    commands:\n"
        f"      backfill: '{manage} outbox_backfill'\n"
        f"      emit: '{manage} outbox_emit'\n"
        f"      outbox_status: '{manage} sync_status --json'\n"
        f"      source_digest: '{manage} sync_digest'\n"
        f"      target_digest: '{manage} sync_digest'\n"
        f"local:\n  aws: {{endpoint: '{aws_endpoints.aws}', sqs: '{aws_endpoints.sqs}'}}\n"
    )
    base = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STRANGLER_ROUTING": str(routing),
        **aws_endpoints.environment(),
    }
    side = {
        name: {**base, "NOTES_SIDE": name, "NOTES_DATABASE": str(tmp_path / db)}
        for name, db in (("monolith", "a.db"), ("notes-service", "b.db"))
    }
    for env in side.values():
        run(python, site / "manage.py", "migrate", "--noinput", env=env, cwd=site)
    # 4. the queues, and rows written before and after the app was added
    run(strangler, "sync", "queues", "-f", routing, env=base, cwd=tmp_path)
    make = (
        "from notes.models import Note\n"
        "from django.db import transaction\n"
        "with transaction.atomic():\n"
        "    for i in range(30): Note.objects.create(title=f'note {i}', body='ü' * i)\n"
    )
    run(python, site / "manage.py", "shell", "-c", make, env=side["monolith"], cwd=site)
    # 5. the relay publishes, the consumer applies
    run(python, site / "manage.py", "outbox_relay", "--once", env=side["monolith"], cwd=site)
    run(python, site / "manage.py", "inbox_consumer", "--drain", "--wait", "1",
        env=side["notes-service"], cwd=site)  # fmt: skip
    # 6. verify: the digests of both sides agree
    report = json.loads(
        run(strangler, "sync", "verify", "notes", "-f", routing, "--json", env=base, cwd=tmp_path)
    )
    assert report["drift"] == 0, report
    assert report["entities"]["notes.Note"]["target_rows"] == 30
    # an edit and a deletion travel too; a change the consumer has not applied is drift
    change = (
        "from notes.models import Note\n"
        "from django.db import transaction\n"
        "with transaction.atomic():\n"
        "    note = Note.objects.get(title='note 3')\n"
        "    note.pinned = True\n"
        "    note.save()\n"
        "    Note.objects.get(title='note 4').delete()\n"
    )
    run(python, site / "manage.py", "shell", "-c", change, env=side["monolith"], cwd=site)
    run(python, site / "manage.py", "outbox_relay", "--once", env=side["monolith"], cwd=site)
    drift = subprocess.run(
        [str(strangler), "sync", "verify", "notes", "-f", str(routing), "--json"],
        env=base, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert drift.returncode == 1, drift.stderr
    run(python, site / "manage.py", "inbox_consumer", "--drain", "--wait", "1",
        env=side["notes-service"], cwd=site)  # fmt: skip
    after = json.loads(
        run(strangler, "sync", "verify", "notes", "-f", routing, "--json", env=base, cwd=tmp_path)
    )
    assert after["drift"] == 0, after
    assert after["entities"]["notes.Note"]["target_rows"] == 29
