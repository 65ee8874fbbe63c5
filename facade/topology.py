"""The local topology that ``strangler up`` runs, built from a ``LocalConfig``.

Today that is the monolith alone, served by gunicorn on the front-door address, after
``migrate`` and ``seed --if-empty``. The monolith is started as a process by its module
path (``monolith.wsgi``), never imported: the toolkit does not depend on the sample.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from facade.exceptions import ConfigError
from facade.stack import Service, SetupStep, Stack


@dataclass(frozen=True)
class SeedSize:
    products: int = 500
    customers: int = 200
    orders: int = 2000
    seed: int = 42


@dataclass(frozen=True)
class LocalConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None  # None: the monolith's embedded SQLite default
    workers: int = 2
    threads: int = 4
    seed: SeedSize | None = SeedSize()
    python: str = sys.executable
    settings_module: str = "monolith.settings"
    wsgi_app: str = "monolith.wsgi"
    gunicorn_config: str = "monolith.gunicorn_conf"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port}: must be between 1 and 65535")
        if self.workers < 1 or self.threads < 1:
            raise ConfigError(
                f"workers={self.workers}, threads={self.threads}: both must be at least 1"
            )

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def build_stack(config: LocalConfig) -> Stack:
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

    bind = (
        f"[{config.host}]:{config.port}" if ":" in config.host else f"{config.host}:{config.port}"
    )
    monolith = Service(
        name="monolith",
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
        url=config.base_url,
        health_url=f"{config.base_url}/healthz",
        role="legacy Django monolith (gunicorn)",
        env=env,
    )
    links = {
        "shop": f"{config.base_url}/shop/",
        "api": f"{config.base_url}/api/catalog/products/",
        "admin": f"{config.base_url}/admin/",
    }
    return Stack(setup=setup, services=[monolith], front_door=config.base_url, links=links)
