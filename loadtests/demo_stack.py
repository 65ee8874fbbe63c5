"""The sample's whole topology (``strangler up`` on the repository's routing.yaml) on free
loopback ports, for the scripts in ``loadtests/`` that need a running shop: a copy of
routing.yaml in a scratch folder with its ports moved (and the tester override header
on), and the stack in the background until the block ends.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facade.aws_local import free_port

REPO = Path(__file__).resolve().parents[1]
STRANGLER = str(Path(sys.executable).with_name("strangler"))


def sample_routing(directory: Path) -> tuple[Path, str]:
    """The repository's routing.yaml on free ports, override on; (file, front door)."""
    text = (REPO / "routing.yaml").read_text()
    for old in (8000, 8001, 8002, 4566, 4567, 4568, 9901):
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{free_port()}")
    text, count = re.subn(r"(override:\s*#[^\n]*\n\s*enabled:) false", r"\1 true", text)
    if count != 1:
        raise SystemExit("routing.yaml: could not switch the tester override on")
    path = directory / "routing.yaml"
    path.write_text(text)
    listen = re.search(r"listen: (127\.0\.0\.1:\d+)", text)
    assert listen is not None
    return path, f"http://{listen.group(1)}"


def strangler(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [STRANGLER, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if check and result.returncode != 0:
        raise SystemExit(f"strangler {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


@contextmanager
def stack(
    routing: Path, env: dict[str, str], customers: int, products: int = 60
) -> Iterator[list[str]]:
    """``strangler up`` in the background until the block ends; yields its output lines."""
    process = subprocess.Popen(
        [STRANGLER, "up", "-f", str(routing), "-e", f"SEED_PRODUCTS={products}",
         "-e", f"SEED_CUSTOMERS={customers}", "-e", "SEED_ORDERS=200"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    up = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            lines.append(line)
            if "the stack is up" in line:
                up.set()
        up.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not up.wait(300) or process.poll() is not None:
            raise SystemExit("the stack did not come up:\n" + "".join(lines[-40:]))
        yield lines
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(10)
