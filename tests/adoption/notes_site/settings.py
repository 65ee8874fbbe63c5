"""A small Django site that adopts strangler's sync: the same code runs as the monolith
(``NOTES_SIDE=monolith``, it publishes its notes) and as the new service
(``NOTES_SIDE=notes-service``, it applies them into its own database)."""

import os

SIDE = os.environ["NOTES_SIDE"]
SECRET_KEY = "notes-site-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["facade.sync.django", "notes"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["NOTES_DATABASE"]}
}

# Step 2 of "Adopt it in your own monolith": which models each side publishes on which
# stream, and which it applies (an empty dict: copy the row as it comes).
STRANGLER_SYNC = {
    "origin": SIDE,  # this side's backend in routing.yaml
    "routing": os.environ.get("STRANGLER_ROUTING", "routing.yaml"),
    "publish": {"notes": {"notes.Note": {}}} if SIDE == "monolith" else {},
    "apply": {"notes": {"notes.Note": {}}} if SIDE == "notes-service" else {},
}
