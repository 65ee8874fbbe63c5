"""CloudWatch Logs metric filter limits as cfn-lint rules (see the package docstring).

cfn-lint's schema checks a filter's shape (at most 3 dimensions, one transformation, the
names' patterns); what it leaves unchecked:

* a dimension's ``Value`` is "the log event field that will contain the value for this
  dimension", ``$.field`` of a JSON event or ``$field`` of a space-delimited one (the
  CloudFormation reference of ``AWS::Logs::MetricFilter Dimension``): a constant there
  publishes nothing CloudWatch can be asked for;
* a transformation with dimensions takes no ``DefaultValue`` (CloudWatch Logs refuses the
  pair; the Terraform AWS provider documents it as "conflicts with dimensions").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

# a JSON selector ($.a.b, $.a[0]) or a space-delimited field ($status, $4)
FIELD = re.compile(r"^\$(\.[A-Za-z0-9_-]+(\[\d+\])*)+$|^\$[A-Za-z0-9_]+$")

Path = list[str | int]


def transformations(cfn: Any) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, MetricTransformation) of every metric filter of the template."""
    for name, resource in cfn.get_resources(["AWS::Logs::MetricFilter"]).items():
        found = (resource.get("Properties") or {}).get("MetricTransformations")
        if not isinstance(found, list):
            continue
        for index, transformation in enumerate(found):
            if isinstance(transformation, dict):
                path: Path = ["Resources", name, "Properties", "MetricTransformations", index]
                yield path, transformation


class MetricFilterDimensionField(CloudFormationLintRule):  # type: ignore[misc]
    id = "E9111"
    shortdesc = "Metric filter dimension that is no field of the log event"
    description = "A metric filter's dimension value names a log event field: $.field or $field."
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-logs-metricfilter-dimension.html"
    tags = ["resources", "logs", "strangler"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        found = []
        for path, transformation in transformations(cfn):
            dimensions = transformation.get("Dimensions")
            for index, dimension in enumerate(dimensions if isinstance(dimensions, list) else []):
                value = dimension.get("Value") if isinstance(dimension, dict) else None
                if isinstance(value, str) and not FIELD.match(value):
                    where = [*path, "Dimensions", index, "Value"]
                    message = f"{value!r} is no log event field ($.field or $field)"
                    found.append(RuleMatch(where, message))
        return found


class MetricFilterDefaultWithDimensions(CloudFormationLintRule):  # type: ignore[misc]
    id = "E9112"
    shortdesc = "Metric filter with both dimensions and a default value"
    description = "A metric transformation with Dimensions cannot have a DefaultValue."
    source_url = "https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/cloudwatch_log_metric_filter"
    tags = ["resources", "logs", "strangler"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        return [
            RuleMatch([*path, "DefaultValue"], "a DefaultValue beside Dimensions")
            for path, transformation in transformations(cfn)
            if transformation.get("Dimensions") and "DefaultValue" in transformation
        ]
