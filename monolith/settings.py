"""Settings of the sample legacy shop.

Everything that differs between a laptop, CI and production comes from the environment:

``DATABASE_URL``           any URL dj-database-url understands; default SQLite under ``var/``
``DJANGO_SECRET_KEY``      required when ``DJANGO_DEBUG`` is off in production; a dev key otherwise
``DJANGO_DEBUG``           ``1`` to turn on Django's debug pages
``DJANGO_ALLOWED_HOSTS``   comma-separated; ``*`` by default because the shop sits behind a proxy
``STRANGLER_VAR_DIR``      where the embedded SQLite database lives (default ``<repo>/var``)
``DJANGO_STATIC_ROOT``     where ``collectstatic`` writes (production); unset locally
``DJANGO_PASSWORD_HASHERS`` comma-separated hasher classes, first one hashes (default Django's)
``STRANGLER_SERVICE_TOKEN``  token extracted services send to ``/internal/`` (unset: off)
"""

from __future__ import annotations

import os
from pathlib import Path

import django_stubs_ext

from monolith.core.config import database, logging_config, rest_framework

# Lets the typed generics of Django's classes (ModelAdmin[Product], ...) run as written.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = Path(os.environ.get("STRANGLER_VAR_DIR", BASE_DIR.parent / "var"))

DEBUG = os.environ.get("DJANGO_DEBUG", "") in {"1", "true", "yes"}
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-secret-strangler-sample-monolith")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "monolith.core",
    "monolith.catalog",
    "monolith.customers",
    "monolith.orders",
    "monolith.storefront",
    "monolith.internal",
    "facade.sync.django",
]

# The data sync (the toolkit's Django app, facade.sync.django). The monolith publishes
# the catalog to the catalog service, and every order to the orders service; it applies
# the orders service's orders. Orders travel both ways while their route is split: a
# two-way pair, whose lifecycle and id split routing.yaml declares
# (sync.orders-to-lambda.two_way).
STRANGLER_SYNC = {
    "origin": "monolith",
    "routing": os.environ.get("STRANGLER_ROUTING") or str(BASE_DIR.parent / "routing.yaml"),
    "publish": {
        "catalog": {"catalog.Category": {}, "catalog.Product": {}, "catalog.StockLevel": {}},
        "orders-to-lambda": {
            "orders.Order": {
                "serialize": "monolith.orders.sync:order_state",
                "parts": {"orders.OrderLine": "order"},
            },
        },
    },
    "apply": {"orders-to-monolith": {"orders.Order": "monolith.orders.sync:apply_order"}},
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "monolith.urls"
WSGI_APPLICATION = "monolith.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


DATABASES = {
    "default": database(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'monolith.sqlite3'}"
    )
}
# Each request is one transaction: a change and its outbox event commit together.
DATABASES["default"]["ATOMIC_REQUESTS"] = True

# The legacy tables use 32-bit integer keys; the data-sync design depends on it.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# Extracted services call /internal/ with this token (monolith.internal.auth).
STRANGLER_SERVICE_TOKEN = os.environ.get("STRANGLER_SERVICE_TOKEN", "")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The first hasher hashes new passwords; the others still verify existing ones.
if os.environ.get("DJANGO_PASSWORD_HASHERS"):
    PASSWORD_HASHERS = [h.strip() for h in os.environ["DJANGO_PASSWORD_HASHERS"].split(",")]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Only production needs collectstatic (set DJANGO_STATIC_ROOT there).
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or None
# Serve admin assets straight from the installed apps: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/shop/login/"
LOGIN_REDIRECT_URL = "/shop/"
LOGOUT_REDIRECT_URL = "/shop/"

REST_FRAMEWORK = rest_framework()

LOGGING = logging_config()
