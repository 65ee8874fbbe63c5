"""gunicorn settings of the monolith (``gunicorn -c python:monolith.gunicorn_conf monolith.wsgi``).

Bind address and worker counts come from the command line or ``GUNICORN_CMD_ARGS``;
these are the settings that hold everywhere (laptop, CI, EC2).
"""

from __future__ import annotations

wsgi_app = "monolith.wsgi:application"
worker_class = "gthread"
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Finish in-flight requests on SIGTERM before exiting (load balancers drain first).
graceful_timeout = 20
timeout = 60
keepalive = 5
# One control socket per user by default; several gunicorns on one host would share it.
control_socket_disable = True
