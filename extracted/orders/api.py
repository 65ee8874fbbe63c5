"""The orders API, route for route what the monolith answers under ``/api/orders/``.

``GET  /api/orders/``              the caller's orders (staff: all; ``?customer=``, ``?status=``)
``POST /api/orders/``              place: ``{"lines": [{"product": id, "quantity": n}]}``
``GET  /api/orders/{id}/``         one order (its customer or staff; others get 404)
``POST /api/orders/{id}/pay/``     placed → paid (its customer or staff)
``POST /api/orders/{id}/cancel/``  placed|paid → cancelled, stock released (its customer or staff)
``POST /api/orders/{id}/ship/``    paid → shipped (staff only)

Bodies, status codes, pagination (``?page``, ``?page_size`` ≤ 100, absolute ``next`` /
``previous`` links), ordering (``?ordering=placed_at|id|total``, ``-`` for descending)
and errors are the monolith's. One addition: ``POST /api/orders/`` honours an
``Idempotency-Key`` header — a retried request returns the order the first one placed
and takes stock once. Without the header the event's request id is the key, so a
retried invocation of the same event is absorbed too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from extracted.orders import errors, requests
from extracted.orders.owner import Identity, Owner
from extracted.orders.store import STATUSES, Conflict, OrderStore, money, stamp

log = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    "placed": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset(),
    "cancelled": frozenset(),
}
STAMPS = {"paid": "paid_at", "shipped": "shipped_at", "cancelled": "cancelled_at"}
ORDERING_FIELDS = ("placed_at", "id", "total")
DEFAULT_ORDERING = ("-placed_at", "-id")
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Services:
    store: OrderStore
    owner: Owner


router = Router()  # type: ignore[no-untyped-call]
_services: Services | None = None
_services_factory: Callable[[], Services] | None = None


def configure(factory: Callable[[], Services]) -> None:
    """Set how the store and the owner client are built (once, on first use)."""
    global _services, _services_factory
    _services_factory = factory
    _services = None


def services() -> Services:
    global _services
    if _services is None:
        if _services_factory is None:
            raise RuntimeError("extracted.orders.api.configure() was not called")
        _services = _services_factory()
    return _services


# -- request helpers -------------------------------------------------------------------


def _header(name: str) -> str | None:
    value = router.current_event.headers.get(name)
    if value is None:
        value = router.current_event.headers.get(name.lower())
    return value


def _query_pairs() -> list[tuple[str, str]]:
    """Decoded query parameters: ALB passes them as they arrived (still URL-encoded),
    API Gateway's HTTP API passes the raw query string beside decoded values."""
    raw = router.current_event.raw_event
    if "rawQueryString" in raw:
        return [
            (k, v) for k, values in parse_qs(raw["rawQueryString"], keep_blank_values=True).items()
            for v in values
        ]  # fmt: skip
    multi = raw.get("multiValueQueryStringParameters")
    if multi:
        return [(unquote_plus(k), unquote_plus(v)) for k, vs in multi.items() for v in vs]
    single = raw.get("queryStringParameters") or {}
    return [(unquote_plus(k), unquote_plus(v)) for k, v in single.items()]


def _query() -> dict[str, str]:
    return dict(_query_pairs())  # the last of repeated names wins, as in Django


def _absolute_url() -> str:
    path = router.current_event.path
    query = urlencode(_query_pairs())
    host = _header("Host") or "localhost"
    return urlunsplit(("http", host, path, query, ""))


def _with_page(url: str, page: int | None) -> str:
    """DRF's replace_query_param / remove_query_param, byte for byte."""
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    if page is None:
        params.pop("page", None)
    else:
        params["page"] = [str(page)]
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def _caller() -> Identity:
    header = _header("Authorization") or ""
    parts = header.split()
    if not parts or parts[0].lower() != "token":
        raise errors.not_authenticated()
    if len(parts) == 1:
        raise errors.authentication_failed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise errors.authentication_failed(
            "Invalid token header. Token string should not contain spaces."
        )
    return services().owner.identity(parts[1])


def _order_id(raw: str) -> int:
    if not raw.isdigit() or not raw.isascii():
        raise errors.no_resource(router.current_event.path)
    return int(raw)


def render(order: dict[str, Any]) -> dict[str, Any]:
    """An order as the monolith's OrderSerializer shows it."""
    return {
        "id": int(order["id"]),
        "customer": int(order["customer"]),
        "status": order["status"],
        "currency": order["currency"],
        "total": money(order["total"]),
        "lines": [
            {
                "product": int(line["product"]),
                "sku": line["sku"],
                "quantity": int(line["quantity"]),
                "unit_price": money(line["unit_price"]),
                "line_total": money(line["unit_price"] * line["quantity"]),
            }
            for line in order["lines"]
        ],
        **{field: _timestamp(order.get(field)) for field in (
            "placed_at", "paid_at", "shipped_at", "cancelled_at", "updated_at"
        )},
    }  # fmt: skip


def _timestamp(value: Any) -> str | None:
    """DRF's DateTimeField output: ISO 8601, ``Z`` for UTC, no zero microseconds."""
    if not value:
        return None
    moment = dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _visible(order: dict[str, Any] | None, who: Identity) -> dict[str, Any]:
    if order is None or not (who.staff or int(order["customer"]) == who.customer):
        raise errors.not_found()
    return order


# -- list ------------------------------------------------------------------------------


def _ordering(raw: str | None) -> tuple[str, ...]:
    terms = [t.strip() for t in (raw or "").split(",")]
    valid = tuple(t for t in terms if t and t.lstrip("-") in ORDERING_FIELDS)
    return valid or DEFAULT_ORDERING


def _positive_int(raw: str | None, default: int, cutoff: int) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        return default
    return min(value, cutoff) if value > 0 else default


def _filters(query: dict[str, str], who: Identity) -> tuple[int | None, str | None, bool]:
    """(customer, status, empty) from ``?customer=`` / ``?status=``, checked as
    django-filter checks them."""
    fields: dict[str, list[str]] = {}
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        fields["status"] = [f"Select a valid choice. {status} is not one of the available choices."]
    customer_raw = query.get("customer") or None
    customer: int | None = None
    if customer_raw is not None:
        if customer_raw.isdigit():
            customer = int(customer_raw)
        else:
            fields["customer"] = [
                "Select a valid choice. That choice is not one of the available choices."
            ]
    if fields:
        raise errors.validation_error(fields)
    if who.staff:
        return customer, status, False
    if who.customer is None or (customer is not None and customer != who.customer):
        return None, None, True
    return who.customer, status, False


def _sorted(orders: Iterable[dict[str, Any]], ordering: tuple[str, ...]) -> list[dict[str, Any]]:
    result = list(orders)
    for term in reversed(ordering):
        name = term.lstrip("-")
        result.sort(key=lambda order: _sort_value(order, name), reverse=term.startswith("-"))
    return result


def _sort_value(order: dict[str, Any], name: str) -> Any:
    return str(order[name]) if name == "placed_at" else order[name]


def _list(who: Identity) -> Response[str]:
    query = _query()
    customer, status, empty = _filters(query, who)
    size = _positive_int(query.get("page_size"), PAGE_SIZE, MAX_PAGE_SIZE)
    store = services().store
    count = 0 if empty else store.count(customer=customer, status=status)
    pages = max(1, -(-count // size))
    raw_page = query.get("page", "1")
    try:
        number = pages if raw_page == "last" else int(raw_page)
    except ValueError:
        number = 0
    if not 1 <= number <= pages:
        raise errors.not_found("Invalid page.")
    offset = (number - 1) * size
    ordering = _ordering(query.get("ordering"))
    results: list[dict[str, Any]] = []
    if not empty and count:
        if ordering[0] == "-placed_at" and ordering[1:] in ((), ("-id",)):
            stream = store.newest_first(customer=customer, status=status)
        elif ordering[0] == "placed_at" and ordering[1:] in ((), ("id",)):
            stream = store.newest_first(customer=customer, status=status, newest=False)
        else:  # any other order needs every matching order in memory, then sorts
            everything = store.newest_first(customer=customer, status=status)
            stream = iter(_sorted(everything, ordering))
        for index, order in enumerate(stream):
            if index >= offset + size:
                break
            if index >= offset:
                results.append(render(order))
    url = _absolute_url()
    return _json(
        200,
        {
            "count": count,
            "next": _with_page(url, number + 1) if number < pages else None,
            "previous": (
                None if number == 1 else _with_page(url, None if number == 2 else number - 1)
            ),
            "results": results,
        },
    )


# -- place -----------------------------------------------------------------------------


def _idempotency_key(who: Identity) -> str:
    given = _header("Idempotency-Key")
    if given is None:
        context = router.current_event.raw_event.get("requestContext", {})
        given = context.get("requestId") or _header("X-Amzn-Trace-Id") or uuid.uuid4().hex
    digest = hashlib.sha256(f"{who.customer}:{given}".encode()).hexdigest()
    return f"order-{digest[:40]}"


def _place(who: Identity) -> Response[str]:
    if who.customer is None:
        raise errors.permission_denied("This account has no customer profile.")
    event = router.current_event
    data = requests.parse_json(event.decoded_body, _header("Content-Type"))
    lines = requests.order_lines(data)
    key = _idempotency_key(who)
    store, owner = services().store, services().owner
    placed = store.placed_under(key)
    existing = store.get(placed) if placed is not None else None
    if existing is not None:  # a retry of a request that was answered
        return _json(201, render(_visible(existing, who)))
    reservation = owner.reserve(key, lines)  # idempotent: a retry takes no more stock
    try:
        now = stamp(dt.datetime.now(dt.UTC))
        order = {
            "id": store.claim_id(key),
            "customer": who.customer,
            "status": "placed",
            "currency": reservation["currency"],
            "total": _decimal(reservation["total"]),
            "lines": [
                {
                    "product": int(line["product"]),
                    "sku": line["sku"],
                    "quantity": int(line["quantity"]),
                    "unit_price": _decimal(line["unit_price"]),
                }
                for line in reservation["lines"]
            ],
            "placed_at": now,
            "updated_at": now,
            "reservation": key,
        }
        if not store.put_new(order):  # a concurrent retry of this request wrote it first
            return _json(201, render(_visible(store.get(int(order["id"])), who)))
    except Exception as exc:
        log.exception("placing order under %s failed after the stock was reserved", key)
        _release_unless_placed(store, owner, key)
        raise errors.unavailable(
            "The order could not be saved; nothing was charged or reserved."
        ) from exc
    return _json(201, render(order))


def _release_unless_placed(store: OrderStore, owner: Owner, key: str) -> None:
    """Give the stock back, unless an order holds it (a concurrent retry may have saved
    one) or that cannot be known — stock left reserved is found by verification, stock
    released under a live order would be sold twice."""
    try:
        placed = store.placed_under(key)
        if placed is not None and store.get(placed) is not None:
            return
    except Exception:
        log.exception("cannot tell whether %s was placed; its stock stays reserved", key)
        return
    try:
        owner.release(key)
    except errors.ApiError:
        log.exception("releasing reservation %s failed; it stays reserved", key)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


# -- status changes --------------------------------------------------------------------


def _transition(order: dict[str, Any], target: str) -> Response[str]:
    store = services().store
    order_id = int(order["id"])
    allowed_from = [s for s, nexts in TRANSITIONS.items() if target in nexts]
    now = stamp(dt.datetime.now(dt.UTC))
    changes: dict[str, Any] = {STAMPS[target]: now, "updated_at": now}
    try:
        updated = store.update_status(
            order_id, allowed_from=allowed_from, status=target, changes=changes
        )
    except Conflict:
        current = store.get(order_id) or order
        raise errors.invalid_transition(
            order_id, current["status"], target, sorted(TRANSITIONS[current["status"]])
        ) from None
    if target == "cancelled":
        _give_stock_back(updated)
    return _json(200, render(updated))


def _give_stock_back(order: dict[str, Any]) -> None:
    """Release the order's reservation now, if it has one. The cancellation stands either
    way: the monolith, which owns stock, gives an order's stock back once when it
    applies the cancellation from the sync (``monolith.orders.sync``) — also for its own
    orders cancelled here, which hold no reservation."""
    key = order.get("reservation")
    if not key:
        return
    try:
        services().owner.release(str(key))
    except errors.ApiError:
        log.warning("order %s: releasing %s failed; the sync gives it back", order["id"], key)


# -- routes ----------------------------------------------------------------------------


def _redirect_with_slash() -> Response[str]:
    event = router.current_event
    query = urlencode(_query_pairs())
    location = event.path + "/" + (f"?{query}" if query else "")
    return Response(status_code=301, headers={"Location": location}, body="")


@router.route("/api/orders", method=ALL_METHODS)
def orders_without_slash() -> Response[str]:
    return _redirect_with_slash()


@router.route("/api/orders/", method=ALL_METHODS)
def orders() -> Response[str]:
    method = router.current_event.http_method
    who = _caller()
    if method not in ("GET", "HEAD", "POST"):
        raise errors.method_not_allowed(method)
    return _place(who) if method == "POST" else _list(who)


@router.route("/api/orders/<order_id>", method=ALL_METHODS)
def order_without_slash(order_id: str) -> Response[str]:
    _order_id(order_id)
    return _redirect_with_slash()


@router.route("/api/orders/<order_id>/", method=ALL_METHODS)
def order_detail(order_id: str) -> Response[str]:
    number = _order_id(order_id)
    who = _caller()
    method = router.current_event.http_method
    if method not in ("GET", "HEAD"):
        raise errors.method_not_allowed(method)
    return _json(200, render(_visible(services().store.get(number), who)))


@router.route("/api/orders/<order_id>/<action>/", method=ALL_METHODS)
def order_action(order_id: str, action: str) -> Response[str]:
    number = _order_id(order_id)
    target = {"pay": "paid", "cancel": "cancelled", "ship": "shipped"}.get(action)
    if target is None:
        raise errors.no_resource(router.current_event.path)
    who = _caller()
    method = router.current_event.http_method
    if method != "POST":
        raise errors.method_not_allowed(method)
    if target == "shipped" and not who.staff:
        raise errors.permission_denied("Only staff can ship orders.")
    order = _visible(services().store.get(number), who)
    return _transition(order, target)
