"""Orders in DynamoDB: one table, keys laid out for the API's access patterns.

=======================  ===========================  ===================================
access pattern           key                          item
=======================  ===========================  ===================================
order by id              PK ``ORDER#<id>``            the order, its lines inside
                         SK ``ORDER``
a customer's orders,     GSI1 ``CUSTOMER#<id>``       (same item, projected ALL)
newest first             GSI1SK ``<placed_at>#<id>``
orders by status and     GSI2 ``STATUS#<status>``     (same item, projected ALL)
date                     GSI2SK ``<placed_at>#<id>``
placing, idempotently    PK ``PLACE#<key>``           → the order id claimed for the key
changes to publish       GSI3 ``OUTBOX`` (sparse)     orders whose newest ``version`` is
                         GSI3SK ``<updated_at>#<id>`` not yet sent to the sync
next order id            PK ``COUNTER#order``         atomic counter (``ADD``)
=======================  ===========================  ===================================

Sort keys are ``<timestamp, fixed width>#<id, 12 digits>`` so that "newest first" is a
descending query, ties broken by id as the monolith does (``-placed_at, -id``).
Order ids come from the counter plus ``ORDER_ID_BASE``, a range the monolith's integer
keys never reach, so ids from both sides never collide.

A status change is one conditional ``UpdateItem`` (``status IN (allowed from)``), so
two concurrent changes of one order cannot both win. Every change also bumps the order's
``version`` and flags it in the sparse GSI3 in the same single-item write — the
function's transactional outbox: ``publish_pending`` sends each flagged order's current
state to the sync and unflags it only if no newer change happened meanwhile. Placing
first claims an id for the request's idempotency key (``PLACE#<key>``, kept by
``if_not_exists``), then puts the order only if that id is free: every retry, concurrent
or later, lands on the same order.
Only single-item conditional writes are used — no transactions — which is what every
DynamoDB stand-in implements, and half the write cost of a transaction on AWS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

STATUSES = ("placed", "paid", "shipped", "cancelled")
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
GSI_CUSTOMER = "GSI1"
GSI_STATUS = "GSI2"
GSI_OUTBOX = "GSI3"  # sparse: only orders whose newest change is not yet published
OUTBOX_PARTITION = "OUTBOX"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the orders table (the SAM template says the same)."""
    projection = {"ProjectionType": "ALL"}
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}PK", "KeyType": "HASH"},
                    {"AttributeName": f"{index}SK", "KeyType": "RANGE"},
                ],
                "Projection": projection,
            }
            for index in (GSI_CUSTOMER, GSI_STATUS, GSI_OUTBOX)
        ],
    }


def dynamodb_client(max_attempts: int = 3) -> DynamoDBClient:
    """A DynamoDB client from the environment: ``AWS_ENDPOINT_URL_DYNAMODB`` (or
    ``AWS_ENDPOINT_URL``) points it at a local stand-in; unset, it talks to AWS."""
    config = Config(retries={"max_attempts": max_attempts, "mode": "standard"})
    return boto3.client("dynamodb", config=config)


def create_table(client: DynamoDBClient, name: str) -> bool:
    """Create the table unless it exists; True when it was created."""
    try:
        client.create_table(**table_definition(name))
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceInUseException":
            return False
        raise
    client.get_waiter("table_exists").wait(TableName=name)
    return True


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(STAMP_FORMAT)


def _sort_key(placed_at: str, order_id: int) -> str:
    return f"{placed_at}#{order_id:012d}"


def _encode(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _decode(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _order_key(order_id: int) -> dict[str, Any]:
    return {"PK": {"S": f"ORDER#{order_id}"}, "SK": {"S": "ORDER"}}


class Conflict(Exception):
    """A conditional write lost: the item changed (or exists) since it was read."""


class OrderStore:
    def __init__(self, table: str, *, id_base: int, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self.id_base = id_base
        self.client = client or dynamodb_client()

    # -- writes ----------------------------------------------------------------------

    def next_id(self) -> int:
        answer = self.client.update_item(
            TableName=self.table,
            Key={"PK": {"S": "COUNTER#order"}, "SK": {"S": "COUNTER"}},
            UpdateExpression="ADD #v :one",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return self.id_base + int(answer["Attributes"]["value"]["N"])

    def placed_under(self, key: str) -> int | None:
        """The order id claimed under an idempotency key, if any."""
        answer = self.client.get_item(
            TableName=self.table,
            Key={"PK": {"S": f"PLACE#{key}"}, "SK": {"S": "PLACE"}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return int(item["order"]["N"]) if item else None

    def claim_id(self, key: str) -> int:
        """The order id for an idempotency key: a new one the first time, the same one on
        every retry (``if_not_exists`` keeps the first writer's id; a losing retry only
        leaves a gap in the counter)."""
        answer = self.client.update_item(
            TableName=self.table,
            Key={"PK": {"S": f"PLACE#{key}"}, "SK": {"S": "PLACE"}},
            UpdateExpression="SET #o = if_not_exists(#o, :new)",
            ExpressionAttributeNames={"#o": "order"},
            ExpressionAttributeValues={":new": {"N": str(self.next_id())}},
            ReturnValues="ALL_NEW",
        )
        return int(answer["Attributes"]["order"]["N"])

    def put_new(self, order: Mapping[str, Any]) -> bool:
        """Write an order unless one with its id exists; False if it did (a retry won)."""
        order_id = int(order["id"])
        sort_key = _sort_key(str(order["placed_at"]), order_id)
        item = {
            **order,
            "PK": f"ORDER#{order_id}",
            "SK": "ORDER",
            "GSI1PK": f"CUSTOMER#{order['customer']}",
            "GSI1SK": sort_key,
            "GSI2PK": f"STATUS#{order['status']}",
            "GSI2SK": sort_key,
            "version": 1,
            "GSI3PK": OUTBOX_PARTITION,
            "GSI3SK": f"{order['placed_at']}#{order_id:012d}",
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_encode(item),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def update_status(
        self,
        order_id: int,
        *,
        allowed_from: Sequence[str],
        status: str,
        changes: Mapping[str, Any],
        remove: Sequence[str] = (),
        require: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Set ``status`` (and ``changes``) if the order's status is in ``allowed_from``
        (and ``require`` holds); return the new order or raise ``Conflict``."""
        names = {"#status": "status", "#g2": "GSI2PK", "#v": "version", "#g3": "GSI3PK"}
        names["#g3s"] = "GSI3SK"
        values: dict[str, Any] = {
            ":status": status,
            ":g2": f"STATUS#{status}",
            ":one": 1,
            ":g3": OUTBOX_PARTITION,
            ":g3s": f"{changes.get('updated_at', '')}#{order_id:012d}",
        }
        sets = ["#status = :status", "#g2 = :g2", "#v = #v + :one", "#g3 = :g3", "#g3s = :g3s"]
        for i, (name, value) in enumerate(changes.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = value
            sets.append(f"#c{i} = :c{i}")
        allowed = []
        for i, previous in enumerate(allowed_from):
            values[f":from{i}"] = previous
            allowed.append(f":from{i}")
        condition = f"attribute_exists(PK) AND #status IN ({', '.join(allowed)})"
        for i, (name, value) in enumerate((require or {}).items()):
            names[f"#r{i}"] = name
            values[f":r{i}"] = value
            condition += f" AND #r{i} = :r{i}"
        expression = "SET " + ", ".join(sets)
        for i, name in enumerate(remove):
            names[f"#x{i}"] = name
        if remove:
            expression += " REMOVE " + ", ".join(f"#x{i}" for i in range(len(remove)))
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: _serializer.serialize(v) for k, v in values.items()},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict(f"order {order_id} changed") from exc
            raise
        return _decode(answer["Attributes"])

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Orders whose newest change is not published yet, oldest change first."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=GSI_OUTBOX,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "GSI3PK"},
            ExpressionAttributeValues={":pk": {"S": OUTBOX_PARTITION}},
            Limit=limit,
        )
        return [_decode(item) for item in answer.get("Items", [])]

    def mark_published(self, order_id: int, version: int) -> bool:
        """Unflag the order if ``version`` is still its newest (False: changed since)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression="REMOVE GSI3PK, GSI3SK",
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def clear(self, order_id: int, attribute: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=_order_key(order_id),
            UpdateExpression="REMOVE #a",
            ExpressionAttributeNames={"#a": attribute},
        )

    # -- reads -----------------------------------------------------------------------

    def get(self, order_id: int) -> dict[str, Any] | None:
        answer = self.client.get_item(
            TableName=self.table, Key=_order_key(order_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return _decode(item) if item else None

    def _pages(
        self, index: str, partition: str, status: str | None, **extra: Any
    ) -> Iterator[dict[str, Any]]:
        """Every page of a query on one GSI partition, optionally filtered by status."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": f"{index}PK"},
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            **extra,
        }
        if status is not None:
            args["FilterExpression"] = "#status = :status"
            args["ExpressionAttributeNames"]["#status"] = "status"
            args["ExpressionAttributeValues"][":status"] = {"S": status}
        while True:
            answer = self.client.query(**args)
            yield dict(answer)
            if "LastEvaluatedKey" not in answer:
                return
            args["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _query(
        self, index: str, partition: str, *, newest_first: bool, status: str | None
    ) -> Iterator[dict[str, Any]]:
        for page in self._pages(index, partition, status, ScanIndexForward=not newest_first):
            for item in page.get("Items", []):
                yield _decode(item)

    def _count(self, index: str, partition: str, status: str | None) -> int:
        return sum(int(p["Count"]) for p in self._pages(index, partition, status, Select="COUNT"))

    def _partitions(
        self, customer: int | None, status: str | None
    ) -> list[tuple[str, str, str | None]]:
        if customer is not None:
            return [(GSI_CUSTOMER, f"CUSTOMER#{customer}", status)]
        statuses = [status] if status is not None else list(STATUSES)
        return [(GSI_STATUS, f"STATUS#{s}", None) for s in statuses]

    def count(self, *, customer: int | None, status: str | None) -> int:
        return sum(self._count(i, p, s) for i, p, s in self._partitions(customer, status))

    def newest_first(
        self, *, customer: int | None, status: str | None, newest: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Orders by (placed_at, id), newest first unless ``newest`` is False; several
        status partitions are merged as they stream, so a page reads only what it shows."""
        streams = [
            self._query(i, p, newest_first=newest, status=s)
            for i, p, s in self._partitions(customer, status)
        ]
        if len(streams) == 1:
            yield from streams[0]
            return
        heads: list[tuple[dict[str, Any], Iterator[dict[str, Any]]]] = []
        for stream in streams:
            first = next(stream, None)
            if first is not None:
                heads.append((first, stream))
        while heads:
            pick = (max if newest else min)(
                range(len(heads)), key=lambda i: str(heads[i][0]["GSI2SK"])
            )
            item, stream = heads[pick]
            yield item
            following = next(stream, None)
            if following is None:
                heads.pop(pick)
            else:
                heads[pick] = (following, stream)


def money(value: Decimal | int | str) -> str:
    return f"{Decimal(value):.2f}"


def create_local_table() -> None:
    """Set-up hook of the local AWS stand-ins (``facade.aws_local --setup``): the
    environment points boto3 at them."""
    import os

    create_table(dynamodb_client(), os.environ.get("ORDERS_TABLE", "strangler-orders"))
