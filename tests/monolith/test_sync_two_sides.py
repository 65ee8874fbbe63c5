"""The two-way order sync over both real sides, on every interleaving Hypothesis finds.

One side is the monolith in this process (its models, outbox, inbox and stock, on the
test database: PostgreSQL or SQLite); the other is the orders function's store on the
DynamoDB stand-in with the function's own apply code. Between them two wires carry
the changes each side's relay would send. The machine places orders on the monolith
(placing on the function needs its HTTP front: ``tests/sync/test_orders_sync.py``), moves
them on either side, edits them in the admin without a status change, and delivers,
delays, redelivers (a consumer killed before it deleted a message), and re-sends (a
relay killed after SQS took the batch, before it marked the rows) — per message group in
FIFO order, as SQS delivers, or in any order. When both wires are drained:

* both sides hold every order in the same state, under the same stamp;
* that state is the greatest change made (``facade.sync.conflict``), so no change was
  dropped as a duplicate or lost to an older one;
* each order's stock was given back exactly once if it ended cancelled, never otherwise.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import deque
from functools import cmp_to_key
from typing import cast

import boto3
import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from extracted.orders import relay as orders_relay
from extracted.orders import sync as orders_sync
from extracted.orders.api import STAMPS, TRANSITIONS
from extracted.orders.store import Conflict, OrderStore, create_table, stamp
from facade import aws_local
from facade.sync.conflict import Stamp, wins
from facade.sync.django import inbox
from facade.sync.django.models import EntityVersion, OutboxEvent
from facade.sync.django.relay import change as outbox_change
from facade.sync.messages import Change
from monolith.catalog.models import StockLevel
from monolith.core.errors import InvalidTransition
from monolith.customers.models import Customer
from monolith.orders import services
from monolith.orders.models import Order
from tests.monolith.conftest import make_product
from tests.servers import ORDERS_PAIR, orders_store

pytestmark = pytest.mark.django_db(transaction=True)

TO_LAMBDA, TO_MONOLITH = ORDERS_PAIR.streams
STOCK = 1000
# bounded in `make test`; `make stateful` runs many more
EXAMPLES = int(os.environ.get("STRANGLER_STATEFUL_EXAMPLES", "25"))


class Wire:
    """What a relay sent and a consumer has not yet deleted, per message group."""

    def __init__(self, rank: dict[int, int]) -> None:
        self.groups: dict[str, deque[Change]] = {}
        self.rank = rank  # order id → when the machine made it: groups in a stable order

    def send(self, change: Change) -> None:
        self.groups.setdefault(change.group_id, deque()).append(change)

    def pending(self) -> list[str]:
        found = [g for g, queue in self.groups.items() if queue]
        return sorted(found, key=lambda g: self.rank[int(self.groups[g][0].id)])

    def take(self, group: str, index: int = 0) -> Change:
        queue = self.groups[group]
        index %= len(queue)
        found = queue[index]
        del queue[index]
        return found

    def peek(self, group: str, index: int = 0) -> Change:
        queue = self.groups[group]
        return queue[index % len(queue)]


class TwoSides(RuleBasedStateMachine):
    # set by the test's subclass: the function's store, the buyer, the product ordered
    store: OrderStore
    customer: Customer
    product_id: int

    def __init__(self) -> None:
        super().__init__()
        store, product_id = self.store, self.product_id
        self.quantity: dict[int, int] = {}  # the orders made, in order, and their quantity
        self.index: dict[int, int] = {}
        self.wires = {"monolith": Wire(self.index), "lambda": Wire(self.index)}  # by sender
        self.made: dict[int, list[tuple[Stamp, str]]] = {}  # order → (stamp, status) made
        # every example starts from the same place: full stock, nothing in transit
        StockLevel.objects.filter(product_id=product_id).update(on_hand=STOCK)
        OutboxEvent.objects.filter(published_at__isnull=True).update(
            published_at=dt.datetime.now(dt.UTC)
        )
        for order in store.pending(limit=1000):
            store.mark_published(order)
        self.stock_before = _stock(product_id)

    orders = Bundle("orders")

    # -- changes made on each side --------------------------------------------------------

    @initialize(target=orders, quantity=st.integers(1, 3))
    def first_order(self, quantity: int) -> int:
        return self._place(quantity)

    @rule(target=orders, quantity=st.integers(1, 3))
    def place_on_monolith(self, quantity: int) -> int:
        return self._place(quantity)

    def _place(self, quantity: int) -> int:
        order = services.place_order(
            self.customer, [services.LineRequest(self.product_id, quantity)]
        )
        self.quantity[order.pk] = quantity
        self.index[order.pk] = len(self.index)
        self._made_on_monolith(order.pk)
        return int(order.pk)

    @rule(order=orders, target_status=st.sampled_from(["paid", "shipped", "cancelled"]))
    def move_on_monolith(self, order: int, target_status: str) -> None:
        try:
            services.transition(order, target_status)
        except InvalidTransition:
            return
        self._made_on_monolith(order)

    @rule(order=orders)
    def edit_in_the_admin(self, order: int) -> None:
        """Staff save the order without changing its status (a note, an address)."""
        with transaction.atomic():
            held = Order.objects.select_for_update().get(pk=order)
            held.updated_at = held.updated_at + dt.timedelta(microseconds=1)
            held.save()
        self._made_on_monolith(order)

    @rule(order=orders, target_status=st.sampled_from(["paid", "shipped", "cancelled"]))
    def move_on_the_function(self, order: int, target_status: str) -> None:
        if self.store.get(order) is None:
            return  # not there yet
        allowed = [s for s, nexts in TRANSITIONS.items() if target_status in nexts]
        now = stamp(dt.datetime.now(dt.UTC))
        try:
            updated = self.store.update_status(
                order, allowed_from=allowed, status=target_status,
                changes={STAMPS[target_status]: now, "updated_at": now},
            )  # fmt: skip
        except Conflict:
            return
        self.made.setdefault(order, []).append((self.store.stamp(updated), target_status))

    def _made_on_monolith(self, order: int) -> None:
        held = EntityVersion.objects.get(aggregate="orders.Order", object_id=str(order))
        status = Order.objects.get(pk=order).status
        self.made.setdefault(order, []).append(
            (Stamp(held.rank, held.version, held.origin), status)
        )

    # -- the relays -------------------------------------------------------------------------

    @rule(crash=st.booleans())
    def monolith_relay(self, crash: bool) -> None:
        """Send the outbox's pending order changes; ``crash``: the relay dies after SQS
        took them, before it marked the rows — they are sent again next time."""
        with transaction.atomic():
            rows = list(
                OutboxEvent.objects.select_for_update()
                .filter(published_at__isnull=True, parked_at__isnull=True)
                .order_by("id")
            )
            for row in rows:
                if row.stream == TO_LAMBDA and int(row.aggregate_id) in self.index:
                    self.wires["monolith"].send(outbox_change(row))
            if not crash:
                OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
                    published_at=dt.datetime.now(dt.UTC)
                )

    @rule(crash=st.booleans())
    def function_relay(self, crash: bool) -> None:
        mine = [o for o in self.store.pending(limit=1000) if int(o["id"]) in self.index]
        for order in sorted(mine, key=lambda o: self.index[int(o["id"])]):
            self.wires["lambda"].send(orders_relay.change(self.store, order))
            if not crash:
                self.store.mark_published(order)

    # -- the consumers ----------------------------------------------------------------------

    @precondition(lambda self: any(w.pending() for w in self.wires.values()))
    @rule(
        data=st.data(),
        in_order=st.booleans(),
        killed_before_delete=st.booleans(),
    )
    def deliver(self, data: st.DataObject, in_order: bool, killed_before_delete: bool) -> None:
        """A consumer receives one message: the head of its group (FIFO) or any message
        in transit; killed before it deleted it, the message comes again."""
        sender = data.draw(st.sampled_from([s for s, w in self.wires.items() if w.pending()]))
        wire = self.wires[sender]
        group = data.draw(st.sampled_from(wire.pending()))
        index = 0 if in_order else data.draw(st.integers(0, 20))
        message = wire.peek(group, index) if killed_before_delete else wire.take(group, index)
        self._apply(sender, message)

    def flush(self, sender: str) -> None:
        """Deliver everything ``sender`` sent, in order."""
        wire = self.wires[sender]
        for group in wire.pending():
            while wire.groups[group]:
                self._apply(sender, wire.take(group))

    def _apply(self, sender: str, message: Change) -> None:
        if sender == "monolith":
            orders_sync.apply(message, into=self.store)
        else:
            assert inbox.apply(message) in (True, False)

    # -- what must hold -------------------------------------------------------------------

    @invariant()
    def stock_is_never_given_back_twice(self) -> None:
        taken = sum(self.quantity.values())
        assert self.stock_before - taken <= _stock(self.product_id) <= self.stock_before

    def teardown(self) -> None:
        # everything in transit arrives, in order, and the relays run until quiet
        for _ in range(10):
            self.monolith_relay(crash=False)
            self.function_relay(crash=False)
            if not any(w.pending() for w in self.wires.values()):
                break
            for sender in self.wires:
                self.flush(sender)
        assert not any(w.pending() for w in self.wires.values())
        cancelled = 0
        for order, made in self.made.items():
            here = Order.objects.get(pk=order)
            there = self.store.get(order)
            assert there is not None, f"order {order} never reached the function"
            held = EntityVersion.objects.get(aggregate="orders.Order", object_id=str(order))
            mine = Stamp(held.rank, held.version, held.origin)
            assert mine == self.store.stamp(there), f"order {order}: the stamps differ"
            assert here.status == there["status"], f"order {order}: the sides disagree"
            greatest = max(made, key=cmp_to_key(_by_stamp))
            assert mine == greatest[0], f"order {order}: {greatest} was made, {mine} won"
            assert here.status == greatest[1]
            cancelled += self.quantity[order] if here.status == "cancelled" else 0
        taken = sum(self.quantity.values())
        assert _stock(self.product_id) == self.stock_before - taken + cancelled


def _machine(aws_endpoints: aws_local.Endpoints, buyer: Customer) -> type[TwoSides]:
    client = boto3.client("dynamodb", endpoint_url=aws_endpoints.dynamodb, **aws_local.CREDENTIALS)
    table = f"orders-{uuid.uuid4().hex[:8]}"
    create_table(client, table)
    store = orders_store(table, client)
    product = make_product(f"SKU-{uuid.uuid4().hex[:6]}", STOCK)

    class Machine(TwoSides):
        pass

    Machine.store, Machine.customer, Machine.product_id = store, buyer, product.pk
    return Machine


def test_a_change_made_after_a_remote_change_won_is_never_taken_for_a_duplicate(
    aws_endpoints: aws_local.Endpoints, buyer: Customer
) -> None:
    """Placed on the monolith and delivered; staff edit it twice (status unchanged) while
    the customer pays on the function; the edits arrive there and lose; the payment
    arrives on the monolith and wins; staff ship it. The shipment carries a version the
    function has not seen, so it is applied there: both sides say shipped."""
    sides = _machine(aws_endpoints, buyer)()
    order = cast(int, sides.first_order(quantity=1))
    sides.monolith_relay(crash=False)
    sides.flush("monolith")
    sides.edit_in_the_admin(order)
    sides.edit_in_the_admin(order)
    sides.monolith_relay(crash=False)  # the edits are in transit
    sides.move_on_the_function(order, "paid")
    sides.flush("monolith")  # they arrive and lose against the payment
    sides.function_relay(crash=False)
    sides.flush("lambda")  # the payment wins on the monolith
    assert Order.objects.get(pk=order).status == "paid"
    sides.move_on_monolith(order, "shipped")
    sides.teardown()
    there = sides.store.get(order)
    assert there is not None
    assert there["status"] == "shipped"


def _by_stamp(a: tuple[Stamp, str], b: tuple[Stamp, str]) -> int:
    return 1 if wins(a[0], b[0]) else -1 if wins(b[0], a[0]) else 0


def _stock(product_id: int) -> int:
    return int(StockLevel.objects.get(product_id=product_id).on_hand)


def test_both_sides_converge_on_the_greatest_change_whatever_the_network_does(
    aws_endpoints: aws_local.Endpoints, buyer: Customer
) -> None:
    Machine = _machine(aws_endpoints, buyer)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
