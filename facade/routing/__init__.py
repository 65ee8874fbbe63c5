"""The route table: its model, its loader and validator, its matcher and its edits."""

from __future__ import annotations

from facade.routing.loader import load_table, parse_table
from facade.routing.matcher import Explanation, Matcher
from facade.routing.model import Backend, BackendKind, Route, RoutingTable, Target

__all__ = [
    "Backend",
    "BackendKind",
    "Explanation",
    "Matcher",
    "Route",
    "RoutingTable",
    "Target",
    "load_table",
    "parse_table",
]
