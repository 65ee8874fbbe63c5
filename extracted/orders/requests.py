"""Reading an order request the way the monolith's DRF serializers do.

The body rules (JSON only, ``{"lines": [{"product": id, "quantity": n}]}``, 1..50
lines, quantity 1..1000) and their error messages are DRF's, key for key, so that a
client's error handling works on both sides of the cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from extracted.orders.errors import ApiError, validation_error

MAX_LINES = 50
MAX_QUANTITY = 1000
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")


def parse_json(body: str | None, content_type: str | None) -> Any:
    """The request body as DRF's JSONParser reads it (``{}`` for an empty body)."""
    if not body:
        return {}
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f'Unsupported media type "{content_type or ""}" in request.',
        )
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "malformed_request", f"JSON parse error - {exc}") from exc


def _integer(value: Any, minimum: int, maximum: int | None) -> tuple[int | None, list[str]]:
    if value is None:
        return None, ["This field may not be null."]
    if isinstance(value, str) and len(value) > 1000:
        return None, ["String value too large."]
    try:
        number = int(_DECIMAL_TAIL.sub("", str(value)))
    except (TypeError, ValueError):
        return None, ["A valid integer is required."]
    if number < minimum:
        return None, [f"Ensure this value is greater than or equal to {minimum}."]
    if maximum is not None and number > maximum:
        return None, [f"Ensure this value is less than or equal to {maximum}."]
    return number, []


def _line(item: Any) -> tuple[tuple[int, int] | None, dict[str, list[str]]]:
    if not isinstance(item, Mapping):
        got = type(item).__name__
        return None, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {got}."]}
    errors: dict[str, list[str]] = {}
    values: dict[str, int] = {}
    for name, maximum in (("product", None), ("quantity", MAX_QUANTITY)):
        if name not in item:
            errors[name] = ["This field is required."]
            continue
        number, problems = _integer(item[name], 1, maximum)
        if problems:
            errors[name] = problems
        elif number is not None:
            values[name] = number
    if errors:
        return None, errors
    return (values["product"], values["quantity"]), {}


def order_lines(data: Any) -> list[tuple[int, int]]:
    """(product id, quantity) pairs of a place-order body, or a validation error."""
    if not isinstance(data, Mapping):
        got = type(data).__name__
        raise validation_error(
            {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {got}."]}
        )
    if "lines" not in data:
        raise validation_error({"lines": ["This field is required."]})
    lines = data["lines"]
    if lines is None:
        raise validation_error({"lines": ["This field may not be null."]})
    if not isinstance(lines, list):
        got = type(lines).__name__
        raise validation_error(
            {"lines": {"non_field_errors": [f'Expected a list of items but got type "{got}".']}}
        )
    if not lines:
        raise validation_error({"lines": {"non_field_errors": ["This list may not be empty."]}})
    parsed: list[tuple[int, int]] = []
    errors: dict[str, dict[str, list[str]]] = {}
    for index, item in enumerate(lines):
        line, problems = _line(item)
        if problems:
            errors[str(index)] = problems
        elif line is not None:
            parsed.append(line)
    if errors:
        raise validation_error({"lines": errors})
    if len(parsed) > MAX_LINES:
        raise validation_error({"lines": [f"An order has at most {MAX_LINES} lines."]})
    return parsed
