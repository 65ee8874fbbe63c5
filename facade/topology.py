"""The local topology that ``strangler up`` runs, read from routing.yaml's ``local:`` blocks.

Every backend with a ``local`` block contributes its set-up commands (run once, in file
order, before anything starts) and its long-running process, health-checked at its
``url`` + ``health``. ``local.aws`` adds the AWS-API stand-in, whose endpoint and dummy
credentials reach every process through boto3's standard variables
(``AWS_ENDPOINT_URL``, ...). Lambda backends with a handler run inside the facade, so
their ``env`` joins the facade's. The facade (``strangler serve``) takes the front door.

The toolkit never imports the services it runs: they are commands in the file.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from facade.aws_local import READY_PATH, Endpoints, dynalite_command, fauxqs_command
from facade.exceptions import ConfigError
from facade.routing.loader import load_table
from facade.routing.model import Backend, BackendKind, RoutingTable
from facade.stack import Service, SetupStep, Stack

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^${}]*))?\}")
PLACEHOLDER = re.compile(r"\{(python|host|port|bind|url)\}")


@dataclass(frozen=True)
class LocalConfig:
    routing: Path = Path("routing.yaml")
    host: str | None = None  # None: facade.listen of routing.yaml
    port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # overrides of the environment
    setup: bool = True  # False: skip every set-up command (already migrated and seeded)
    python: str = sys.executable

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port}: must be between 1 and 65535")


def expand(text: str, env: Mapping[str, str], where: str) -> str:
    """``${VAR}`` and ``${VAR:-default}`` from ``env``; inner ones first, so defaults nest."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is not None:
            return value
        raise ConfigError(f"{where}: ${{{name}}} is not set; set it or write ${{{name}:-default}}")

    previous = None
    while previous != text:
        previous, text = text, VARIABLE.sub(one, text)
    return text


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _fill(
    command: str, backend: Backend | None, python: str, env: Mapping[str, str], where: str
) -> list[str]:
    values = {"python": python}
    if backend is not None and backend.url:
        host, port = backend.address
        values.update(
            host=host,
            port=str(port),
            bind=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            url=backend.url,
        )

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"{where}: {{{name}}} needs a backend with a url")
        return values[name]

    argv = shlex.split(PLACEHOLDER.sub(placeholder, expand(command, env, where)))
    if not argv:
        raise ConfigError(f"{where}: the command is empty")
    return argv


def _role(backend: Backend) -> str:
    what = {
        BackendKind.MONOLITH: "the legacy monolith",
        BackendKind.ECS: "extracted service (ECS in production)",
        BackendKind.LAMBDA: "extracted function (Lambda in production)",
        BackendKind.URL: "service at a URL",
    }[backend.kind]
    return f"backend {backend.name!r}: {what}"


def _check_ports(table: RoutingTable, front: tuple[str, int], aws: list[tuple[str, int]]) -> None:
    taken: dict[tuple[str, int], str] = {front: "the facade (--port / facade.listen)"}
    for address in aws:
        if address in taken:
            raise ConfigError(f"{table.source}: local.aws uses {address[0]}:{address[1]} twice")
        taken[address] = "an AWS stand-in (local.aws)"
    for backend in table.backends.values():
        if backend.local is None or backend.local.run is None or not backend.url:
            continue
        address = backend.address
        if address in taken:
            raise ConfigError(
                f"{table.source}: {address[0]}:{address[1]} is both {taken[address]} and "
                f"backend {backend.name!r}'s url; give each its own port"
            )
        taken[address] = f"backend {backend.name!r}"


def local_endpoints(table: RoutingTable) -> Endpoints | None:
    """Where the local AWS stand-ins answer (moto's own address for an API whose npm
    stand-in is not installed)."""
    aws = table.local.aws
    if aws is None:
        return None
    dynamodb = aws.dynamodb if aws.dynamodb and dynalite_command() else None
    sqs = aws.sqs if aws.sqs and fauxqs_command() else None
    return Endpoints(aws.endpoint, dynamodb or aws.endpoint, sqs or aws.endpoint)


def base_environment(
    table: RoutingTable, routing: Path, overrides: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(environ, base): the environment ``${…}`` references read, and what every local
    process gets — the table's path, the stand-ins' endpoints, ``local.env``."""
    environ = {**os.environ, **overrides}
    # every process can find the table (the sync's queue names, its own backend's url)
    base: dict[str, str] = {
        "PYTHONUNBUFFERED": "1",
        "STRANGLER_ROUTING": str(Path(routing).resolve()),
    }
    endpoints = local_endpoints(table)
    if endpoints is not None:
        base.update(endpoints.environment())
    for name, value in table.local.env.items():
        base[name] = expand(value, {**environ, **base}, f"{table.source}: local.env.{name}")
    return environ, base


def backend_environment(
    table: RoutingTable, backend: Backend, environ: Mapping[str, str], base: Mapping[str, str]
) -> dict[str, str]:
    env = {**dict(base), **table.sync_environment(backend.name)}
    where = f"{table.source}: backends.{backend.name}.local"
    for name, value in (backend.local.env if backend.local else {}).items():
        env[name] = expand(value, {**environ, **env}, f"{where}.env.{name}")
    return env


def build_stack(config: LocalConfig) -> Stack:
    table = load_table(config.routing)
    source = table.source
    host = config.host or table.settings.listen_host
    port = config.port or table.settings.listen_port
    front = _url(host, port)
    aws = table.local.aws
    endpoints = local_endpoints(table)
    aws_addresses: list[tuple[str, int]] = []
    if endpoints is not None:  # moto's first; an API served by moto adds no address
        urls = dict.fromkeys([endpoints.aws, endpoints.dynamodb, endpoints.sqs])
        aws_addresses = [_address(url) for url in urls]
    _check_ports(table, (host, port), aws_addresses)
    environ, base = base_environment(table, config.routing, config.env)

    setup: list[SetupStep] = []
    services: list[Service] = []
    facade_env = dict(base)
    if aws is not None and endpoints is not None:
        host_, port_ = aws_addresses[0]
        argv = [config.python, "-m", "facade.aws_local", "--host", host_, "--port", str(port_)]
        uses_dynalite = endpoints.dynamodb != endpoints.aws
        uses_fauxqs = endpoints.sqs != endpoints.aws
        # port 0: moto serves that API itself
        dynamodb_port = urlsplit(endpoints.dynamodb).port if uses_dynalite else 0
        sqs_port = urlsplit(endpoints.sqs).port if uses_fauxqs else 0
        argv += ["--dynamodb-port", str(dynamodb_port), "--sqs-port", str(sqs_port)]
        if aws.data and uses_dynalite:
            argv += ["--data", str(Path(aws.data) / "dynamodb")]
        for hook in aws.setup:
            argv += ["--setup", hook]
        extras = [n for n, on in (("dynalite", uses_dynalite), ("fauxqs", uses_fauxqs)) if on]
        what = " + ".join(["moto", *extras])
        services.append(
            Service(
                name="aws",
                argv=argv,
                url=aws.endpoint,
                health_url=aws.endpoint + READY_PATH,
                role=f"AWS-API stand-ins, {what}: " + (", ".join(aws.setup) or "no set-up"),
                env=base,
            )
        )
    for backend in table.backends.values():
        local = backend.local
        if local is None:
            continue
        where = f"{source}: backends.{backend.name}.local"
        env = backend_environment(table, backend, environ, base)
        scope = {**environ, **env}
        if config.setup:
            for i, command in enumerate(local.setup, 1):
                argv = _fill(command, backend, config.python, scope, f"{where}.setup[{i}]")
                setup.append(SetupStep(f"{backend.name} {_step_name(argv)}", argv, env))
        if backend.handler:  # runs inside the facade, with its environment
            own = [*local.env, *table.sync_environment(backend.name)]
            facade_env.update({k: env[k] for k in own})
        elif local.run is not None:
            if not backend.url:
                raise ConfigError(f"{where}: a backend that runs locally needs a url")
            services.append(
                Service(
                    name=backend.name,
                    argv=_fill(local.run, backend, config.python, scope, f"{where}.run"),
                    url=backend.url,
                    health_url=backend.url + local.health,
                    role=_role(backend),
                    env=env,
                )
            )
        for worker, command in local.workers.items():
            services.append(
                Service(
                    name=f"{backend.name}-{worker}",
                    argv=_fill(command, backend, config.python, scope, f"{where}.workers.{worker}"),
                    url="-",
                    health_url=None,
                    role=f"{worker} of backend {backend.name!r}",
                    env=env,
                )
            )
    lambdas = [b.name for b in table.backends.values() if b.handler]
    role = f"the routing facade ({len(table.routes)} routes + default, from {config.routing})"
    if lambdas:
        role += "; runs Lambda " + ", ".join(lambdas)
    routing = str(Path(config.routing).resolve())
    serve = [config.python, "-m", "facade.cli", "serve", "--routing", routing]
    admin = _url(table.settings.admin_host, table.settings.admin_port)
    # the sticky-cookie key outlives restarts: kept under var/ unless configured
    var = Path(environ.get("STRANGLER_VAR_DIR") or Path(config.routing).resolve().parent / "var")
    keep = ["--cookie-secret-file", str(var / "cookie-secret")]
    services.append(
        Service(
            name="facade",
            argv=[*serve, "--host", host, "--port", str(port), *keep],
            url=front,
            health_url=f"{admin}/__facade/health",
            role=role,
            env=facade_env,
        )
    )
    links = {
        "shop": f"{front}/shop/",
        "api": f"{front}/api/catalog/products/",
        "admin": f"{front}/admin/",
        "metrics": f"{admin}/__facade/metrics",
    }
    cwd = str(Path(config.routing).resolve().parent)
    return Stack(setup=setup, services=services, front_door=front, links=links, cwd=cwd)


def _step_name(argv: list[str]) -> str:
    """A short name for a set-up command: its first word after the module, e.g. 'migrate'."""
    words = [w for w in argv[1:] if not w.startswith("-")]
    if len(argv) > 2 and argv[1] == "-m":
        words = [w for w in argv[3:] if not w.startswith("-")]
    return words[0] if words else Path(argv[0]).name
