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

import django_stubs_ext

from monolith.core.config import database, logging_config, rest_framework

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
    "facade.sync.django",  # the data sync: applies the monolith's catalog stream
]
# A copy of the monolith's catalog, kept by the sync (the toolkit's ready-made applier
# writes each row as it came): `manage.py inbox_consumer --stream catalog`.
STRANGLER_SYNC = {
    "origin": "catalog",
    "apply": {"catalog": {"catalog.Category": {}, "catalog.Product": {}, "catalog.StockLevel": {}}},
}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "extracted.catalog.urls"
WSGI_APPLICATION = "extracted.catalog.wsgi.application"


DATABASES = {
    "default": database(
        os.environ.get("CATALOG_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'catalog.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True
LANGUAGE_CODE = "en-us"

# A public read API: no authentication, so no user table and no sessions.
REST_FRAMEWORK = rest_framework(DEFAULT_AUTHENTICATION_CLASSES=[], UNAUTHENTICATED_USER=None)

LOGGING = logging_config()
