"""The catalog service keeps no tables of its own: it serves the catalog app's tables
(``monolith.catalog``, reused as a library) and the sync's bookkeeping lives in the
toolkit's app (``facade.sync.django``)."""
