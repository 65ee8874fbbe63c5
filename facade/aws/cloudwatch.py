"""The one module that calls CloudWatch: a thin typed wrapper over boto3's client that
turns AWS errors into ``AwsError`` (operation, code, message), as ``facade.aws.client``
does for Elastic Load Balancing.

``metric_data`` is one ``GetMetricData`` request, followed through its pages
(``NextToken``): the values of every query by its ``Id``. A query CloudWatch could not
answer completely (``StatusCode`` ``PartialData`` after the last page, ``Forbidden``,
``InternalError``) and any message CloudWatch attaches to the answer is an ``AwsError``:
half an answer must not read as few requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from facade.aws.client import AwsClient
from facade.exceptions import AwsError

MAX_PAGES = 100  # a GetMetricData of a few queries over one period needs one


@dataclass(frozen=True)
class Series:
    """One query's answer: values (timestamps are not needed by the callers)."""

    id: str
    values: tuple[float, ...]


class CloudWatchClient(AwsClient):
    service = "cloudwatch"

    def metric_data(
        self, queries: Sequence[Mapping[str, Any]], start: datetime, end: datetime
    ) -> dict[str, Series]:
        """Every query's values from ``start`` (inclusive) to ``end`` (exclusive), all
        pages joined; ``AwsError`` when the call fails or an answer is incomplete."""
        values: dict[str, list[float]] = {str(q["Id"]): [] for q in queries}
        status: dict[str, str] = {}
        token: str | None = None
        for _ in range(MAX_PAGES):
            answer = self.call(
                "get_metric_data",
                MetricDataQueries=list(queries),
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
                **({"NextToken": token} if token else {}),
            )
            for message in answer.get("Messages", []):
                raise AwsError(
                    f"get_metric_data: {message.get('Code', '?')}: {message.get('Value', '')}"
                )
            for result in answer.get("MetricDataResults", []):
                found = values.setdefault(str(result["Id"]), [])
                found.extend(float(v) for v in result.get("Values", []))
                status[str(result["Id"])] = str(result.get("StatusCode", "Complete"))
                for message in result.get("Messages", []):
                    raise AwsError(
                        f"get_metric_data: query {result['Id']}: "
                        f"{message.get('Code', '?')}: {message.get('Value', '')}"
                    )
            token = answer.get("NextToken")
            if not token:
                break
        else:
            raise AwsError(f"get_metric_data: still more pages after {MAX_PAGES}")
        incomplete = {i: s for i, s in status.items() if s != "Complete"}
        if incomplete:
            shown = ", ".join(f"{i}: {s}" for i, s in sorted(incomplete.items()))
            raise AwsError(f"get_metric_data: incomplete answer ({shown})")
        return {i: Series(i, tuple(v)) for i, v in values.items()}


__all__ = ["CloudWatchClient", "Series"]
