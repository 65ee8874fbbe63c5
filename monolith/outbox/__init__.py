"""A transactional outbox for Django, reusable: it knows nothing of the models it publishes.

Settings::

    OUTBOX = {
        "origin": "monolith",                  # who writes these events (for echo checks)
        "streams": {                           # stream name (routing.yaml's sync:) →
            "catalog": {                       #   model label → serialiser ("module:function")
                "catalog.Product": "monolith.catalog.events:product",
            },
        },
    }

A change to a registered model — ``save()``/``delete()``, or ``outbox.record_ids()`` after
a queryset ``update()`` — inserts an ``OutboxEvent`` row with the entity's state in the
same database transaction, so a rolled-back transaction publishes nothing. The relay
(``manage.py outbox_relay``) sends pending rows to the stream's SQS FIFO queue.
"""
