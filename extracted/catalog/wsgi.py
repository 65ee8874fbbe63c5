"""WSGI entry point (``gunicorn -c python:extracted.catalog.gunicorn_conf``)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

# This service's own settings, whatever the environment says of the monolith's.
os.environ["DJANGO_SETTINGS_MODULE"] = "extracted.catalog.settings"

application = get_wsgi_application()
