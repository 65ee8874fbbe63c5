"""The local topology that ``strangler up`` runs: routing.yaml plus a ``LocalConfig``.

The monolith backend of routing.yaml is served by gunicorn on the address its ``url``
names, after ``migrate`` and ``seed --if-empty``; the facade (``strangler serve``) takes
the front door and routes to it. The monolith is started as a process by its module
path (``monolith.wsgi``), never imported: the toolkit does not depend on the sample.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from facade.exceptions import ConfigError
from facade.routing.loader import load_table
from facade.routing.model import BackendKind
from facade.stack import Service, SetupStep, Stack


@dataclass(frozen=True)
class SeedSize:
    products: int = 500
    customers: int = 200
    orders: int = 2000
    seed: int = 42


@dataclass(frozen=True)
class LocalConfig:
    routing: Path = Path("routing.yaml")
    host: str | None = None  # None: facade.listen of routing.yaml
    port: int | None = None
    database_url: str | None = None  # None: the monolith's embedded SQLite default
    workers: int = 2
    threads: int = 4
    seed: SeedSize | None = SeedSize()
    python: str = sys.executable
    settings_module: str = "monolith.settings"
    wsgi_app: str = "monolith.wsgi"
    gunicorn_config: str = "monolith.gunicorn_conf"

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port}: must be between 1 and 65535")
        if self.workers < 1 or self.threads < 1:
            raise ConfigError(
                f"workers={self.workers}, threads={self.threads}: both must be at least 1"
            )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_stack(config: LocalConfig) -> Stack:
    table = load_table(config.routing)
    monolith = next(
        (b for b in table.backends.values() if b.kind is BackendKind.MONOLITH and b.url), None
    )
    if monolith is None or monolith.url is None:
        raise ConfigError(f"{config.routing}: no monolith backend with a url to run locally")
    mono_host, mono_port = monolith.address
    host = config.host or table.settings.listen_host
    port = config.port or table.settings.listen_port
    if (host, port) == (mono_host, mono_port):
        raise ConfigError(
            f"the front door {host}:{port} is also the monolith's address in {config.routing}; "
            "give the facade (--port / facade.listen) and the monolith different ports"
        )
    manage = [config.python, "-m", "monolith.manage"]
    env = {"DJANGO_SETTINGS_MODULE": config.settings_module, "PYTHONUNBUFFERED": "1"}
    if config.database_url:
        env["DATABASE_URL"] = config.database_url

    setup = [SetupStep("migrate", [*manage, "migrate", "--noinput", "-v", "0"], env)]
    if config.seed is not None:
        size = config.seed
        setup.append(
            SetupStep(
                "seed",
                [
                    *manage,
                    "seed",
                    "--if-empty",
                    "--products",
                    str(size.products),
                    "--customers",
                    str(size.customers),
                    "--orders",
                    str(size.orders),
                    "--seed",
                    str(size.seed),
                ],
                env,
            )
        )

    bind = f"[{mono_host}]:{mono_port}" if ":" in mono_host else f"{mono_host}:{mono_port}"
    monolith_url = _url(mono_host, mono_port)
    front = _url(host, port)
    monolith_service = Service(
        name=monolith.name,
        argv=[
            config.python,
            "-m",
            "gunicorn",
            "--config",
            f"python:{config.gunicorn_config}",
            "--bind",
            bind,
            "--workers",
            str(config.workers),
            "--threads",
            str(config.threads),
            config.wsgi_app,
        ],
        url=monolith_url,
        health_url=f"{monolith_url}/healthz",
        role=f"backend {monolith.name!r}: the legacy Django monolith (gunicorn)",
        env=env,
    )
    facade = Service(
        name="facade",
        argv=[
            config.python,
            "-m",
            "facade.cli",
            "serve",
            "--routing",
            str(config.routing),
            "--host",
            host,
            "--port",
            str(port),
        ],
        url=front,
        health_url=f"{front}/__facade/health",
        role=f"the routing facade ({len(table.routes)} routes + default, from {config.routing})",
        env={"PYTHONUNBUFFERED": "1"},
    )
    links = {
        "shop": f"{front}/shop/",
        "api": f"{front}/api/catalog/products/",
        "admin": f"{front}/admin/",
        "metrics": f"{front}/__facade/metrics",
    }
    return Stack(setup=setup, services=[monolith_service, facade], front_door=front, links=links)
