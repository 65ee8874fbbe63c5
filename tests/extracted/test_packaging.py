"""What ships: the orders function's zip and the catalog service's image hold
everything their code imports from this repository, and nothing it would need the
rest of the repository for."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
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


def _locked(lock: Path) -> set[str]:
    names = re.findall(r"^([A-Za-z0-9_.\-]+)==", lock.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


@pytest.fixture(scope="module")
def toolkit_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The toolkit's wheel, built from this repository as the catalog image builds it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )  # fmt: skip
    return zipfile.ZipFile(next(out.glob("strangler-*.whl")))


def test_the_catalog_image_holds_every_module_the_service_imports(
    toolkit_wheel: zipfile.ZipFile,
) -> None:
    dockerfile = (ROOT / "extracted" / "catalog" / "Dockerfile").read_text()
    copied: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        if line.startswith("COPY ") and "requirements" not in line and "--from" not in line:
            copied += line.split()[1:-1]
    assert "COPY --from=toolkit /wheels" in dockerfile  # the toolkit comes as its wheel
    copied += [n for n in toolkit_wheel.namelist() if n.startswith("facade/")]
    code = (
        "import json, sys\n"
        "import django\n"
        "from django.conf import settings\n"
        "import extracted.catalog.settings as s\n"
        "import extracted.catalog.wsgi, extracted.catalog.urls\n"
        "import extracted.catalog.management.commands.import_catalog\n"
        "import facade.sync.django.management.commands.inbox_consumer\n"
        "print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) "
        "if getattr(m, '__file__', None)})))"
    )
    env = {"PATH": "/usr/bin:/bin", "CATALOG_DATABASE_URL": "sqlite://",
           "DJANGO_SETTINGS_MODULE": "extracted.catalog.settings"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    files = json.loads(result.stdout.splitlines()[-1])
    root = str(ROOT) + "/"
    loaded = {f[len(root) :] for f in files if f.startswith(root) and "/.venv/" not in f}
    assert "facade/sync/django/inbox.py" in loaded
    missing = [f for f in loaded if not any(f == c or f.startswith(c + "/") for c in copied)]
    assert not missing, f"imported but not in the image: {missing}"
    # every third-party distribution that code imports is pinned in the image's lock file
    locked = _locked(ROOT / "extracted" / "catalog" / "requirements.lock")
    assert _distributions_imported_by(loaded) - locked == set()


def _distributions_imported_by(files: set[str]) -> set[str]:
    """The installed distributions the import statements of ``files`` name."""
    dists = packages_distributions()
    top: set[str] = set()
    for name in files:
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            if isinstance(node, ast.Import):
                top |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                top.add(node.module.split(".")[0])
    found = {d for t in top for d in dists.get(t, [])}
    return {re.sub(r"[-_.]+", "-", d).lower() for d in found} - {"strangler"}


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
    # the toolkit is installed as its wheel (without dependencies), not copied file by file
    assert any(re.fullmatch(r"strangler-[^/]+\.dist-info/RECORD", n) for n in names)
    assert not any(n.startswith(("django/", "locust/", "moto/")) for n in names)
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
