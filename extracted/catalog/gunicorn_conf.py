"""gunicorn settings of the catalog service, as its container runs them on ECS.

On SIGTERM (ECS stopping the task, after the ALB has started draining it) gunicorn
stops accepting, lets in-flight requests finish for up to ``graceful_timeout`` seconds,
then exits; keep it below the task definition's ``stopTimeout`` (30 s by default).
Bind address and worker counts come from the command line or ``GUNICORN_CMD_ARGS``.
"""

from __future__ import annotations

wsgi_app = "extracted.catalog.wsgi:application"
worker_class = "gthread"
workers = 2
threads = 8
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
graceful_timeout = 25
timeout = 30
# Longer than the ALB's idle timeout (60 s), so the ALB closes idle connections first.
keepalive = 65
control_socket_disable = True
