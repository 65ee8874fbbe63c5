"""Build the orders function's deployment package: ``python -m extracted.orders.package``.

The zip holds the function's code (``extracted/orders``, minus the local HTTP front),
the toolkit — built as a wheel from this repository and installed without its
dependencies, as any dependency is: the function runs the toolkit's sync runtime
(``facade.sync.conflict``, ``messages``, ``digest``), which needs nothing but boto3 —
and its dependencies from ``extracted/orders/requirements.lock``, installed for the
Lambda runtime (Python 3.11, x86_64, manylinux wheels only) with their hashes checked.
Entries are written in sorted order with fixed timestamps, so the same sources make the
same zip byte for byte. Prints the sizes and refuses packages over Lambda's limits
(50 MB zipped for a direct upload, 250 MB unzipped).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CODE = ("extracted/__init__.py", "extracted/orders")
LEFT_OUT = {"local.py", "package.py"}  # the laptop's HTTP front and this builder
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _install(requirements: Path, target: Path) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile",
            "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
            "--implementation", "cp", "--python-version", "3.11",
            "--target", str(target), "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip


def _toolkit(site: Path, scratch: Path) -> None:
    """Build the toolkit's wheel and install it (without dependencies) into ``site``:
    both sides of a two-way stream settle concurrent changes by the same code."""
    wheels = scratch / "wheel"
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(ROOT),
        ],
        check=True,
    )  # fmt: skip
    # a wheel is a zip of the installed files: unpacking it is installing it without
    # scripts and without the record of where it came from, the same bytes every build
    (wheel,) = wheels.glob("strangler-*.whl")
    zipfile.ZipFile(wheel).extractall(site)


def code_files() -> list[tuple[Path, str]]:
    """(file, name in the zip) of the function's own code."""
    files: list[tuple[Path, str]] = []
    for entry in CODE:
        path = ROOT / entry
        candidates = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in candidates:
            if file.name in LEFT_OUT and file.parent == HERE:
                continue
            files.append((file, file.relative_to(ROOT).as_posix()))
    return files


def build(out: Path, *, with_sdk: bool) -> tuple[int, int, str]:
    """Write the zip; return (zipped bytes, unzipped bytes, sha256)."""
    with tempfile.TemporaryDirectory() as scratch:
        site = Path(scratch) / "site"
        _install(HERE / "requirements.lock", site)
        _toolkit(site, Path(scratch))
        if with_sdk:
            _install(HERE / "requirements-sdk.lock", site)
        entries = [
            (file, file.relative_to(site).as_posix())
            for file in sorted(site.rglob("*"))
            if file.is_file() and "__pycache__" not in file.parts
        ]
        entries += code_files()
        entries.sort(key=lambda item: item[1])
        out.parent.mkdir(parents=True, exist_ok=True)
        unzipped = 0
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for file, name in entries:
                info = zipfile.ZipInfo(name, FIXED_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                data = file.read_bytes()
                unzipped += len(data)
                archive.writestr(info, data)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return out.stat().st_size, unzipped, digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m extracted.orders.package", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "orders-lambda.zip")
    parser.add_argument(
        "--with-sdk", action="store_true", help="bundle boto3 instead of the runtime's"
    )
    args = parser.parse_args(argv)
    zipped, unzipped, digest = build(args.out, with_sdk=args.with_sdk)
    mib = 1024 * 1024
    print(f"{args.out}: {zipped / mib:.2f} MiB zipped, {unzipped / mib:.2f} MiB unzipped")
    print(f"sha256 {digest}")
    print("handler: extracted.orders.handler.lambda_handler (runtime python3.11, x86_64)")
    if zipped > ZIPPED_LIMIT or unzipped > UNZIPPED_LIMIT:
        print(
            "too large for Lambda: 50 MB zipped (direct upload) / 250 MB unzipped", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
