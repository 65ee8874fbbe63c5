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
Order ids come from the counter, counted from the start of this side's range (the id
split routing.yaml declares for the orders' two-way pair: the monolith allocates below
it, this table from it up), so ids from both sides never collide.

A status change is one conditional ``UpdateItem`` (``status IN (allowed from)``), so
two concurrent changes of one order cannot both win. Every change also takes the next
version of the order's Lamport ``clock`` (``facade.sync.conflict``: above every version
made, held or received here), marks it as made here (``origin``) and flags it in the
sparse GSI3 in the same single-item write — the function's transactional outbox:
``publish_pending`` sends each flagged order's current state to the sync and unflags it
only if no newer change happened meanwhile, recording the published stamp as
``synced_*`` (what the monolith knows of the order: the base of the next change sent).
GSI3's sort key is when the order is due to be sent: a change SQS refused for now is
due again after a backoff, and the others go first meanwhile; one refused for good is
set aside under ``PARKED`` (``strangler sync dlq`` lists it).

Orders changed on the monolith arrive through ``apply_remote``: ``facade.sync.conflict``
decides, the item is replaced (unflagged: an applied change is never sent back) or only
its ``seen`` version moves, under a condition on the version and origin it was judged
against, and concurrent changes are recorded as ``CONFLICT#<id>`` items and counted. Placing
first claims an id for the request's idempotency key (``PLACE#<key>``, kept by
``if_not_exists``), then puts the order only if that id is free: every retry, concurrent
or later, lands on the same order.
Only single-item conditional writes are used — no transactions — which is what every
DynamoDB stand-in implements, and half the write cost of a transaction on AWS.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from facade.sync.conflict import Decision, Stamp, TwoWay, decide

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


def _failed_condition(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


def _index_keys(order: Mapping[str, Any]) -> dict[str, Any]:
    order_id = int(order["id"])
    sort_key = _sort_key(str(order["placed_at"]), order_id)
    return {
        "PK": f"ORDER#{order_id}",
        "SK": "ORDER",
        "GSI1PK": f"CUSTOMER#{order['customer']}",
        "GSI1SK": sort_key,
        "GSI2PK": f"STATUS#{order['status']}",
        "GSI2SK": sort_key,
    }


ORIGIN = "orders"  # this side's backend name in routing.yaml
PARKED_PARTITION = "PARKED"
CONFLICTS_PARTITION = "CONFLICTS#"  # + stream, in the status index: one item a conflict


class OrderStore:
    def __init__(
        self,
        table: str,
        *,
        id_base: int,
        client: DynamoDBClient | None = None,
        origin: str = ORIGIN,
        two_way: TwoWay | None = None,
    ) -> None:
        self.table = table
        self.id_base = id_base  # the first order id minus one
        self.client = client or dynamodb_client()
        self.origin = origin
        self.two_way = two_way  # the orders' pair of streams: their lifecycle

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
        item = {
            **order,
            **_index_keys(order),
            "version": 1,
            "clock": 1,
            "origin": self.origin,
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
            if _failed_condition(exc):
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
    ) -> dict[str, Any]:
        """Set ``status`` (and ``changes``) if the order's status is in ``allowed_from``;
        return the new order or raise ``Conflict``."""
        names = {"#status": "status", "#g2": "GSI2PK", "#v": "version", "#g3": "GSI3PK"}
        names.update({"#g3s": "GSI3SK", "#o": "origin", "#c": "clock"})
        values: dict[str, Any] = {
            ":status": status,
            ":g2": f"STATUS#{status}",
            ":one": 1,
            ":g3": OUTBOX_PARTITION,
            ":g3s": f"{changes.get('updated_at', '')}#{order_id:012d}",
            ":o": self.origin,
        }
        # the next version of the order's clock (items written before it had one: their
        # version); status changes only move forward (allowed_from), as the pair requires
        sets = ["#status = :status", "#g2 = :g2", "#v = if_not_exists(#c, #v) + :one"]
        sets += ["#c = if_not_exists(#c, #v) + :one", "#g3 = :g3", "#g3s = :g3s", "#o = :o"]
        for i, (name, value) in enumerate(changes.items()):
            names[f"#c{i}"] = name
            values[f":c{i}"] = value
            sets.append(f"#c{i} = :c{i}")
        allowed = []
        for i, previous in enumerate(allowed_from):
            values[f":from{i}"] = previous
            allowed.append(f":from{i}")
        condition = f"attribute_exists(PK) AND #status IN ({', '.join(allowed)})"
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={k: _serializer.serialize(v) for k, v in values.items()},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _failed_condition(exc):
                raise Conflict(f"order {order_id} changed") from exc
            raise
        return _decode(answer["Attributes"])

    def pending(self, limit: int = 100, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Orders whose newest change is due to be published, longest due first."""
        due = stamp(now or dt.datetime.now(dt.UTC)) + "#~"
        answer = self.client.query(
            TableName=self.table,
            IndexName=GSI_OUTBOX,
            KeyConditionExpression="#pk = :pk AND #sk <= :due",
            ExpressionAttributeNames={"#pk": "GSI3PK", "#sk": "GSI3SK"},
            ExpressionAttributeValues={":pk": {"S": OUTBOX_PARTITION}, ":due": {"S": due}},
            Limit=limit,
        )
        return [_decode(item) for item in answer.get("Items", [])]

    def waiting(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Orders whose newest change is not published yet (due or not)."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=GSI_OUTBOX,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "GSI3PK"},
            ExpressionAttributeValues={":pk": {"S": OUTBOX_PARTITION}},
            Limit=limit,
        )
        return [_decode(item) for item in answer.get("Items", [])]

    def retry_later(self, order: Mapping[str, Any], at: dt.datetime) -> None:
        """A change SQS refused for now: due again at ``at`` (others go first)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_order_key(int(order["id"])),
                UpdateExpression="SET GSI3SK = :due ADD attempts :one",
                ConditionExpression="#v = :v AND attribute_exists(GSI3PK)",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={
                    ":due": {"S": f"{stamp(at)}#{int(order['id']):012d}"},
                    ":v": {"N": str(int(order["version"]))},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def park(self, order: Mapping[str, Any], error: str) -> None:
        """A change SQS refused for good: unflag it (if unchanged) and keep it aside."""
        order_id = int(order["id"])
        self.client.put_item(
            TableName=self.table,
            Item=_encode(
                {
                    "PK": PARKED_PARTITION,
                    "SK": f"{order_id:012d}",
                    "order": order_id,
                    "version": int(order["version"]),
                    "error": error[:2000],
                    "parked_at": stamp(dt.datetime.now(dt.UTC)),
                }
            ),
        )
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression="REMOVE GSI3PK, GSI3SK",
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(int(order["version"]))}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def parked(self) -> list[dict[str, Any]]:
        """The changes set aside, oldest order first."""
        items: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :p",
            "ExpressionAttributeValues": {":p": {"S": PARKED_PARTITION}},
        }
        while True:
            page = self.client.query(**args)
            items += [_decode(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def unpark(self, order_id: int) -> None:
        self.client.delete_item(
            TableName=self.table,
            Key={"PK": {"S": PARKED_PARTITION}, "SK": {"S": f"{order_id:012d}"}},
        )

    def touch(self, order_id: int) -> bool:
        """Send the order again as a new change made here (the repair of a drift); False
        when there is no such order."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression="SET #v = if_not_exists(#c, #v) + :one, "
                "#c = if_not_exists(#c, #v) + :one, #o = :me, GSI3PK = :g3, GSI3SK = :g3s",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#v": "version", "#o": "origin", "#c": "clock"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":me": {"S": self.origin},
                    ":g3": {"S": OUTBOX_PARTITION},
                    ":g3s": {"S": f"{stamp(dt.datetime.now(dt.UTC))}#{order_id:012d}"},
                },
            )
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def rank(self, order: Mapping[str, Any]) -> int:
        """The order's stage in the pair's lifecycle (0 without one)."""
        return self.two_way.rank(order) if self.two_way else 0

    def stamp(self, order: Mapping[str, Any]) -> Stamp:
        """The stamp of the order's current state (``facade.sync.conflict``)."""
        return Stamp(
            self.rank(order),
            int(order.get("version", 1)),
            str(order.get("origin", self.origin)),
        )

    @staticmethod
    def synced(order: Mapping[str, Any]) -> Stamp | None:
        """The stamp of the order's state the monolith last had from here or sent here."""
        if "synced_version" not in order:
            return None
        return Stamp(
            int(order["synced_rank"]), int(order["synced_version"]), str(order["synced_origin"])
        )

    def mark_published(self, order: Mapping[str, Any]) -> bool:
        """Record that this state of the order was sent, and unflag it if it is still its
        newest (False: it changed since, and stays flagged)."""
        sent = self.stamp(order)
        key = _order_key(int(order["id"]))
        values = {
            ":v": {"N": str(sent.version)},
            ":r": {"N": str(sent.rank)},
            ":o": {"S": sent.origin},
        }
        record = "SET synced_version = :v, synced_rank = :r, synced_origin = :o"
        try:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=f"{record} REMOVE GSI3PK, GSI3SK, attempts",
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
        else:
            return True
        try:  # a newer change came in meanwhile: the monolith still has this one
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=record,
                ConditionExpression="attribute_not_exists(synced_version) OR synced_version < :v",
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
        return False

    def apply_remote(
        self,
        state: Mapping[str, Any],
        incoming: Stamp,
        base: Stamp | None,
        *,
        stream: str,
        attempts: int = 8,
    ) -> Decision:
        """Judge and apply an order's state changed on the other side (the orders API's
        shape, timestamps in ISO 8601); a local change racing it makes it judge again."""
        order_id = int(state["id"])
        for _ in range(attempts):
            held = self.get(order_id)
            if held and held.get("pending_conflict"):
                self._keep_conflict(order_id, str(held["pending_conflict"]))  # an earlier try died
            current = self.stamp(held) if held else None
            seen = int(held.get("seen", 0)) if held else 0
            decision = decide(incoming, base, current, seen, self.origin)
            if decision.duplicate:
                return decision
            clock = max(
                int(held.get("clock", held.get("version", 0))) if held else 0, incoming.version
            )
            record = None
            if decision.conflict and held is not None and current is not None:
                record = self._conflict(stream, held, current, state, incoming, base)
            try:
                self._settle(
                    state, incoming, current, decision, max(seen, incoming.version), clock, record
                )
            except ClientError as exc:
                if _failed_condition(exc):
                    continue  # changed while it was judged: judge again
                raise
            if record is not None:
                self._keep_conflict(order_id, record)
            return decision
        raise Conflict(f"order {order_id} kept changing while a remote change was applied")

    def _settle(
        self,
        state: Mapping[str, Any],
        incoming: Stamp,
        current: Stamp | None,
        decision: Decision,
        seen: int,
        clock: int,
        conflict: str | None = None,
    ) -> None:
        """Write the decision, on condition that the order is still as it was judged. A
        conflict goes with it onto the order (``pending_conflict``), in the same write:
        kept as its own item after, it is never lost to a function that dies between."""
        guard: dict[str, Any]
        if current is None:
            guard = {"ConditionExpression": "attribute_not_exists(PK)"}
        else:
            guard = {
                "ConditionExpression": "#v = :held_v AND (#o = :held_o OR "
                "(attribute_not_exists(#o) AND :held_o = :me))",
                "ExpressionAttributeNames": {"#v": "version", "#o": "origin"},
                "ExpressionAttributeValues": {
                    ":held_v": {"N": str(current.version)},
                    ":held_o": {"S": current.origin},
                    ":me": {"S": self.origin},
                },
            }
        if decision.apply:
            order = from_wire(state)
            item = {
                **order,
                **_index_keys(order),
                "version": incoming.version,
                "origin": incoming.origin,
                "seen": seen,
                "clock": clock,
                "synced_version": incoming.version,
                "synced_rank": incoming.rank,
                "synced_origin": incoming.origin,
            }  # no GSI3 keys: an applied change is never published back
            if conflict is not None:
                item["pending_conflict"] = conflict
            self.client.put_item(TableName=self.table, Item=_encode(item), **guard)
            return
        assert current is not None  # a change that lost lost against something
        self.client.update_item(
            TableName=self.table,
            Key=_order_key(int(state["id"])),
            UpdateExpression="SET seen = :seen, clock = :clock",
            ConditionExpression=guard["ConditionExpression"],
            ExpressionAttributeNames=guard["ExpressionAttributeNames"],
            ExpressionAttributeValues={
                **guard["ExpressionAttributeValues"],
                ":seen": {"N": str(seen)},
                ":clock": {"N": str(clock)},
            },
        )

    def _conflict(
        self,
        stream: str,
        held: Mapping[str, Any],
        current: Stamp,
        state: Mapping[str, Any],
        incoming: Stamp,
        base: Stamp | None,
    ) -> str:
        """The record of a conflict this side's change lost: both states."""
        from extracted.orders.api import render

        order_id = int(held["id"])
        key = f"{incoming.origin}#{incoming.version:012d}"
        return json.dumps(
            {
                "PK": f"CONFLICT#{order_id}",
                "SK": key,
                "GSI2PK": f"{CONFLICTS_PARTITION}{stream}",  # counted per stream
                "GSI2SK": f"{order_id:012d}#{key}",
                "stream": stream,
                "at": stamp(dt.datetime.now(dt.UTC)),
                "lost": json.dumps({"stamp": current.as_dict(), "state": render(dict(held))}),
                "won": json.dumps(
                    {
                        "stamp": incoming.as_dict(),
                        "base": base.as_dict() if base else None,
                        "state": dict(state),
                    }
                ),
            },
            default=str,
        )

    def _keep_conflict(self, order_id: int, record: str) -> None:
        """Write a conflict the order carries as its own item (``CONFLICT#<id>``, once:
        its key is the winning change's stamp), then take it off the order."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_encode(json.loads(record)),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_order_key(order_id),
                UpdateExpression="REMOVE pending_conflict",
                ConditionExpression="pending_conflict = :record",
                ExpressionAttributeValues={":record": {"S": record}},
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise

    def conflicts(self, stream: str) -> int:
        """How many conflicts the stream's changes met here (a count of their items)."""
        total = 0
        page: dict[str, Any] = {}
        while True:
            answer = self.client.query(
                TableName=self.table,
                IndexName=GSI_STATUS,
                KeyConditionExpression="GSI2PK = :pk",
                ExpressionAttributeValues={":pk": {"S": f"{CONFLICTS_PARTITION}{stream}"}},
                Select="COUNT",
                **page,
            )
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}

    def get(self, order_id: int) -> dict[str, Any] | None:
        answer = self.client.get_item(
            TableName=self.table, Key=_order_key(order_id), ConsistentRead=True
        )
        item = answer.get("Item")
        return _decode(item) if item else None

    def every_order(self) -> Iterator[dict[str, Any]]:
        """Every order in the table, a scan page at a time (for verification)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(PK, :p) AND SK = :sk",
            "ExpressionAttributeValues": {":p": {"S": "ORDER#"}, ":sk": {"S": "ORDER"}},
        }
        while True:
            page = self.client.scan(**args)
            for item in page.get("Items", []):
                yield _decode(item)
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

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


def _stored_moment(text: Any) -> str | None:
    """An ISO 8601 moment (``Z`` or an offset) as the store keeps it."""
    if not text:
        return None
    return stamp(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def from_wire(state: Mapping[str, Any]) -> dict[str, Any]:
    """An order in the sync's shape (the orders API's) as the store keeps it."""
    order: dict[str, Any] = {
        "id": int(state["id"]),
        "customer": int(state["customer"]),
        "status": str(state["status"]),
        "currency": str(state["currency"]),
        "total": Decimal(str(state["total"])),
        "lines": [
            {
                "product": int(line["product"]),
                "sku": str(line["sku"]),
                "quantity": int(line["quantity"]),
                "unit_price": Decimal(str(line["unit_price"])),
            }
            for line in state["lines"]
        ],
    }
    for name in ("placed_at", "paid_at", "shipped_at", "cancelled_at", "updated_at"):
        order[name] = _stored_moment(state.get(name))
    if state.get("reservation"):
        order["reservation"] = str(state["reservation"])
    return order


def create_local_table() -> None:
    """Set-up hook of the local AWS stand-ins (``facade.aws_local --setup``): the
    environment points boto3 at them."""
    import os

    create_table(dynamodb_client(), os.environ.get("ORDERS_TABLE", "strangler-orders"))
