"""The data sync's Django app: a transactional outbox, an inbox that applies other
services' changes at most once, and ids that never collide with theirs.

Install it like any app (``INSTALLED_APPS += ["facade.sync.django"]``, then
``migrate``) and say what this side publishes and applies::

    STRANGLER_SYNC = {
        "origin": "monolith",           # this side's backend name in routing.yaml
        "routing": "/srv/shop/routing.yaml",   # default: $STRANGLER_ROUTING or ./routing.yaml
        "publish": {                    # stream (routing.yaml's sync:) → model → options
            "catalog": {
                "catalog.Product": {},  # every column (serializers.concrete_fields)
            },
            "orders-to-lambda": {
                "orders.Order": {
                    "serialize": "shop.orders.sync:order_state",   # the entity's full state
                    "parts": {"orders.OrderLine": "order"},        # their changes are the order's
                },
            },
        },
        "apply": {                      # stream → model → applier ("module:function")
            "orders-to-monolith": {"orders.Order": "shop.orders.sync:apply_order"},
        },
    }

**Publishing.** A change to a published model — ``save()``/``delete()``, or
``recording.record_ids()`` after a queryset ``update()`` — inserts an ``OutboxEvent``
row with the entity's state in the same database transaction, so a rolled-back
transaction publishes nothing. ``manage.py outbox_relay`` sends pending rows to the
stream's SQS FIFO queue (``relay``).

**Applying.** ``manage.py inbox_consumer --stream NAME`` applies a stream's changes
(``inbox``): each at most once, by version. An applier is called as
``applier(object_id, kind, data)`` with the entity's full state (``kind`` "upsert") or
``None`` ("delete"); without one, ``appliers.replace_row`` writes the columns as they
came.

**Two-way entities.** A model both published and applied is changed on both sides
while its route is split. routing.yaml declares the pair of streams once
(``sync.<stream>.two_way``: the reverse stream, the entity's lifecycle, the id split);
this app stamps every local change (``facade.sync.conflict``), settles concurrent
changes the same way the other side does, records each conflict once, gives new rows
ids from this side's range (``ids``), and refuses a local change that would move the
entity back through its lifecycle.

Management commands: ``outbox_relay``, ``inbox_consumer``, ``outbox_backfill``,
``outbox_emit``, ``sync_status``, ``sync_digest`` (the side's half of ``strangler sync
verify``).
"""
