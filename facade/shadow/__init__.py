"""Shadow traffic: copies of a route's requests to another backend, answers compared.

``mirror``   in the facade worker: which requests are copied; hands them over
``capture``  a bounded copy of the primary's answer, taken as it streams to the client
``recorder`` the worker's shadow process (idle scheduling class) and the pipe to it
``copier``   in the shadow process: the copies, their caps and timeouts
``jsonpath`` the JSON path patterns of routing.yaml's ``shadow.compare``
``compare``  one pair of answers → the fields that differ (JSON by path, else digests)
``noise``    which differences are real: the difference rate against the noise rate
``redact``   secrets and personal data removed before anything is stored
``store``    the SQLite store under ``var/``: comparisons, examples, counters, ``summary``
``report``   the store read back per endpoint and JSON path, as text or JSON
``cli``      ``strangler shadow report|clear``
"""
