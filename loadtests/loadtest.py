"""``make loadtest``: the shop's traffic against the running ``make demo`` stack, headless.

    .venv/bin/python loadtests/loadtest.py [--host http://127.0.0.1:8000] [--users 20]
        [--spawn-rate 5] [--run-time 60s] [--results results] [--workers N]

Checks that the facade answers first (a clear error, not a wall of connection refusals),
then runs ``loadtests/locustfile.py`` for a bounded time and user count, writing locust's
CSV files, its HTML report and ``shop_backends.csv`` (requests per backend) under
``results/<timestamp>/``, and prints locust's summary with the per-backend table. With
``--workers N`` it runs locust's distributed mode on this machine: a master and N
worker processes on loopback. Exit status: locust's (1 when any request failed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LOCUST = str(Path(sys.executable).with_name("locust"))


def facade_is_up(host: str) -> bool:
    """Whether the front door answers (the facade's own 404 for /__facade/ will do: its
    health is on the admin listener)."""
    try:
        httpx.get(f"{host}/__facade/health", timeout=3)
    except httpx.HTTPError:
        return False
    return True


def locust_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        LOCUST, "-f", str(HERE / "locustfile.py"), "--headless", "--host", args.host,
        "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
        "--run-time", args.run_time, "--stop-timeout", "10",
        "--csv", str(out / "shop"), "--html", str(out / "report.html"), "--only-summary",
        "--customers", str(args.customers),
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if not facade_is_up(args.host):
        print(
            f"loadtest: nothing answers at {args.host} — start the stack first "
            "(make demo), or pass --host",
            file=sys.stderr,
        )
        return 2
    out = Path(args.results) / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    command = locust_command(args, out)
    if not args.workers:
        code = subprocess.run(command, check=False).returncode
    else:
        port = args.master_port
        master = [*command, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                  str(port), "--expect-workers", str(args.workers)]  # fmt: skip
        worker = [LOCUST, "-f", str(HERE / "locustfile.py"), "--worker",
                  "--master-host", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
        lead = subprocess.Popen(master)
        helpers = [subprocess.Popen(worker) for _ in range(args.workers)]
        code = lead.wait()
        for helper in helpers:
            helper.wait(timeout=60)
    print(f"loadtest: results in {out}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=5)
    parser.add_argument("--run-time", default="60s", help="locust's --run-time (bounded)")
    parser.add_argument("--customers", type=int, default=200, help="seeded customers")
    parser.add_argument("--results", default="results")
    parser.add_argument("--workers", type=int, default=0, help="distributed: worker processes")
    parser.add_argument("--master-port", type=int, default=5557)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
