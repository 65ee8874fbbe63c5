"""The catalog service, cut out of the monolith to run on ECS.

The first cut of the migration: the read-heavy, low-risk product and category API
(``/api/catalog/``), served by gunicorn from its own database. It runs the monolith's
catalog module (models, serializers, filters, views) as a library in a Django project
of its own — same URLs, JSON, pagination and errors by construction — with none of the
monolith's other apps, no admin, no sessions and no user table. Stock writes stay with
the monolith; this service's tables are fed from it (``import_catalog`` for a snapshot,
the data sync for changes).
"""
