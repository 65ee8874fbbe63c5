"""Settings shared by the monolith and the services cut out of it (the catalog service):
one way to read a database URL, one JSON API configuration, one log format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url


def database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for ``url`` (anything dj-database-url reads)."""
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several gunicorn workers share one file: wait for the write lock instead of
        # failing, take it at BEGIN (no lock upgrades that deadlock), and use WAL so
        # readers never block the writer.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        if config["NAME"] not in {"", ":memory:"}:
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return config


def rest_framework(**overrides: Any) -> dict[str, Any]:
    """The JSON API's DRF settings: JSON only, page numbers, the shop's error envelope."""
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        "DEFAULT_PAGINATION_CLASS": "monolith.core.pagination.ShopPagination",
        "DEFAULT_FILTER_BACKENDS": [
            "django_filters.rest_framework.DjangoFilterBackend",
            "rest_framework.filters.SearchFilter",
            "rest_framework.filters.OrderingFilter",
        ],
        "EXCEPTION_HANDLER": "monolith.core.errors.api_exception_handler",
        "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
        **overrides,
    }


def logging_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
