"""The monolith's internal API for extracted services (``/internal/``).

Not for browsers or the public API: the facade's routes never send ``/internal/`` to an
extracted service, and every call but ``identity`` needs the service token.
"""
