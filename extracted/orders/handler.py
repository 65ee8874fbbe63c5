"""The Lambda entry point: ``extracted.orders.handler.lambda_handler``.

One function behind both front doors: an ALB target group (events with
``requestContext.elb``) and an API Gateway HTTP API (payload format 2.0). Both resolvers
share the routes of ``extracted.orders.api``.

Configuration (Lambda environment variables):

``ORDERS_TABLE``             DynamoDB table (default ``strangler-orders``)
``STRANGLER_SYNC_TWO_WAY``   the orders' pair of sync streams from routing.yaml (rendered
                             by ``strangler up`` and ``strangler render sam``): their
                             lifecycle, and the id split — new orders here take ids
                             from it up, the monolith's stay below
``STRANGLER_SYNC_SIDE``      this function's backend name in routing.yaml (``orders``)
``ORDERS_OWNER_URL``         base URL of the monolith, which owns stock and customers
``STRANGLER_SERVICE_TOKEN``  token for the monolith's internal API
``AWS_ENDPOINT_URL_DYNAMODB`` set only to use a local DynamoDB stand-in
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import ALBResolver, APIGatewayHttpResolver, Response
from botocore.exceptions import BotoCoreError, ClientError

from extracted.orders import api, errors
from extracted.orders.owner import Owner
from extracted.orders.store import ORIGIN, OrderStore
from facade.sync.conflict import SIDE_ENV, TWO_WAY_ENV, two_way_from_environment

logger = Logger(service="orders")

DEFAULT_TABLE = "strangler-orders"
STREAM = "orders-to-monolith"  # the orders' changes made here travel on it


def store_from_environment() -> OrderStore:
    """The order table the environment names (the API, the relay and the sync share it),
    with the orders' two-way pair: their lifecycle and this side's id range."""
    side = os.environ.get(SIDE_ENV, ORIGIN)
    pair = two_way_from_environment().get(STREAM)
    span = pair.id_range(side) if pair else None
    if pair is None or span is None:
        raise RuntimeError(
            f"{TWO_WAY_ENV} does not declare the orders' pair of streams with an id split "
            f"({STREAM}): run under `strangler up`, or deploy with `strangler render sam`"
        )
    return OrderStore(
        os.environ.get("ORDERS_TABLE", DEFAULT_TABLE),
        id_base=span[0] - 1,
        origin=side,
        two_way=pair,
    )


def services_from_environment() -> api.Services:
    owner_url = os.environ.get("ORDERS_OWNER_URL")
    if not owner_url:
        raise RuntimeError("ORDERS_OWNER_URL is not set: the orders function needs the monolith")
    return api.Services(
        store=store_from_environment(),
        owner=Owner(owner_url, os.environ.get("STRANGLER_SERVICE_TOKEN", "")),
    )


def _error_response(error: errors.ApiError) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=json.dumps(error.body(), separators=(",", ":")),
        headers=error.headers,
    )


def _resolver(resolver: ALBResolver | APIGatewayHttpResolver) -> Any:
    resolver.include_router(api.router)

    @resolver.exception_handler(errors.ApiError)  # type: ignore[untyped-decorator]
    def api_error(error: errors.ApiError) -> Response[str]:
        return _error_response(error)

    @resolver.not_found
    def no_route(_: Exception) -> Response[str]:
        return _error_response(errors.no_resource(resolver.current_event.path))

    @resolver.exception_handler([BotoCoreError, ClientError])  # type: ignore[untyped-decorator]
    def store_error(error: Exception) -> Response[str]:
        logger.exception("the order store failed")
        return _error_response(errors.unavailable("The order store is unavailable; try again."))

    @resolver.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def server_error(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return _error_response(
            errors.ApiError(500, "server_error", "The server failed to answer; it has been logged.")
        )

    return resolver


alb = _resolver(ALBResolver(decode_query_parameters=False))
http_api = _resolver(APIGatewayHttpResolver())
api.configure(services_from_environment)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    resolver = alb if "elb" in event.get("requestContext", {}) else http_api
    result: dict[str, Any] = resolver.resolve(event, context)
    return result
