"""Settings of the catalog service (``DJANGO_SETTINGS_MODULE=extracted.catalog.settings``).

``CATALOG_DATABASE_URL``  its own database; default SQLite ``var/catalog.sqlite3``
                          (PostgreSQL in production: RDS, one database per service)
``DJANGO_SECRET_KEY``     only signs nothing here, but Django wants one
``DJANGO_ALLOWED_HOSTS``  comma-separated; ``*`` by default (it sits behind the ALB)
``STRANGLER_VAR_DIR``     where the embedded SQLite database lives (default ``<repo>/var``)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("STRANGLER_VAR_DIR", BASE_DIR.parent.parent / "var"))

DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret-strangler-catalog")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")]

INSTALLED_APPS = [
    "rest_framework",
    "django_filters",
    "monolith.catalog",
    "extracted.catalog",  # its management commands (import_catalog)
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "extracted.catalog.urls"
WSGI_APPLICATION = "extracted.catalog.wsgi.application"


def _database() -> dict[str, Any]:
    url = os.environ.get("CATALOG_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'catalog.sqlite3'}"
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        if config["NAME"] not in {"", ":memory:"}:
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True
LANGUAGE_CODE = "en-us"

REST_FRAMEWORK = {
    # A public read API: no authentication, so no user table and no sessions.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "monolith.core.pagination.ShopPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "monolith.core.errors.api_exception_handler",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
