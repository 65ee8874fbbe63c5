"""Services cut out of the monolith, each with its own data store.

Each sub-package is one service that routing.yaml can send a path to: an ECS service
(a plain WSGI/ASGI process in a container) or a Lambda function (a handler taking ALB
or API Gateway events). They share no code with ``monolith`` and no database with it;
data reaches them over the sync queues.
"""
