"""What ships: the orders function's zip and the catalog service's image hold
everything their code imports from this repository, and nothing it would need the
rest of the repository for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from extracted.orders import package

ROOT = Path(__file__).resolve().parents[2]


def _repo_modules(*imports: str, env: dict[str, str] | None = None) -> set[str]:
    """Files of this repository that importing ``imports`` loads (in a fresh process)."""
    code = (
        "import json, sys\n"
        + "".join(f"import {name}\n" for name in imports)
        + "print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None)})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    files = json.loads(result.stdout.splitlines()[-1])
    root = str(ROOT) + "/"
    return {f[len(root) :] for f in files if f.startswith(root) and "/.venv/" not in f}


def test_the_catalog_image_copies_every_module_the_service_imports() -> None:
    dockerfile = (ROOT / "extracted" / "catalog" / "Dockerfile").read_text()
    copied: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        if line.startswith("COPY ") and "requirements" not in line:
            copied += line.split()[1:-1]
    loaded = _repo_modules(
        "extracted.catalog.wsgi",
        "extracted.catalog.urls",
        "extracted.catalog.management.commands.import_catalog",
        env={"PATH": "/usr/bin:/bin", "CATALOG_DATABASE_URL": "sqlite://"},
    )
    assert loaded
    missing = [f for f in loaded if not any(f == c or f.startswith(c + "/") for c in copied)]
    assert not missing, f"imported but not in the image: {missing}"


def test_the_orders_package_is_reproducible_and_holds_the_function(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    size, unzipped, digest = package.build(first, with_sdk=False)
    assert package.build(second, with_sdk=False)[2] == digest
    assert size < unzipped < package.UNZIPPED_LIMIT
    names = zipfile.ZipFile(first).namelist()
    assert "extracted/orders/handler.py" in names
    assert "extracted/orders/local.py" not in names
    assert any(n.startswith("aws_lambda_powertools/") for n in names)
    assert not any(n.startswith(("monolith/", "tests/")) for n in names)
    assert {n for n in names if n.startswith("facade/")} == set(package.TOOLKIT)
    loaded = _repo_modules("extracted.orders.handler")
    assert {n for n in names if n.startswith(("extracted/", "facade/"))} >= loaded


@pytest.mark.timeout(600)
def test_the_bundled_package_answers_an_alb_event_on_its_own(tmp_path: Path) -> None:
    bundle = tmp_path / "orders.zip"
    package.build(bundle, with_sdk=True)
    unpacked = tmp_path / "task"
    zipfile.ZipFile(bundle).extractall(unpacked)
    event = json.loads((ROOT / "tests" / "facade" / "events" / "alb_event.json").read_text())
    event.update(httpMethod="GET", path="/api/orders/", headers={"host": "shop"}, body="")
    script = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(unpacked)!r}]\n"
        "from extracted.orders.handler import lambda_handler\n"
        "print(json.dumps(lambda_handler(json.loads(sys.argv[1]), None)))\n"
    )
    # -S: no site-packages, so only the zip and the standard library are importable
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, json.dumps(event)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
        env={"ORDERS_OWNER_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["statusCode"] == 401
    assert re.search(r'"code":\s*"not_authenticated"', answer["body"])
