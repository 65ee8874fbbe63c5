"""``strangler render iam``: the least-privilege policy ``plan``, ``apply``, ``drift`` and
the ``--apply`` of the route edits need on one listener.

Reads (``Describe*``) cannot be narrowed below ``*`` in Elastic Load Balancing. Writes
are limited to the listener (its default action, new rules), its rules, and target
groups named ``PREFIX-*`` (the ones ``apply`` may create and register instances in).
``ACTIONS`` maps every ELBv2 call of ``facade.aws.client`` to its IAM action: the tests
record the calls of a real apply and check each is allowed here.
"""

from __future__ import annotations

import re
from typing import Any

from facade.exceptions import ConfigError

LISTENER = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):elasticloadbalancing:(?P<region>[\w-]+):(?P<account>\d{12}):"
    r"listener/app/(?P<lb>[\w-]+)/(?P<lb_id>[0-9a-f]+)/(?P<id>[0-9a-f]+)$"
)
ACTIONS = {
    "describe_listeners": "elasticloadbalancing:DescribeListeners",
    "describe_rules": "elasticloadbalancing:DescribeRules",
    "describe_tags": "elasticloadbalancing:DescribeTags",
    "describe_target_groups": "elasticloadbalancing:DescribeTargetGroups",
    "create_rule": "elasticloadbalancing:CreateRule",
    "modify_rule": "elasticloadbalancing:ModifyRule",
    "delete_rule": "elasticloadbalancing:DeleteRule",
    "set_rule_priorities": "elasticloadbalancing:SetRulePriorities",
    "modify_listener": "elasticloadbalancing:ModifyListener",
    "create_target_group": "elasticloadbalancing:CreateTargetGroup",
    "register_targets": "elasticloadbalancing:RegisterTargets",
    "delete_target_group": "elasticloadbalancing:DeleteTargetGroup",
}
TAGGING = "elasticloadbalancing:AddTags"  # creating a rule or group with tags needs it too


def policy(listener_arn: str, prefix: str) -> dict[str, Any]:
    found = LISTENER.match(listener_arn)
    if found is None:
        raise ConfigError(
            f"--listener {listener_arn!r}: not an ALB listener ARN "
            "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)"
        )
    base = f"arn:{found['partition']}:elasticloadbalancing:{found['region']}:{found['account']}"
    rules = f"{base}:listener-rule/app/{found['lb']}/{found['lb_id']}/{found['id']}/*"
    groups = f"{base}:targetgroup/{prefix}-*/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadTheListener",
                "Effect": "Allow",
                "Action": sorted(a for op, a in ACTIONS.items() if op.startswith("describe_")),
                "Resource": "*",
            },
            {
                "Sid": "ChangeTheListenerAndItsRules",
                "Effect": "Allow",
                "Action": sorted(
                    [
                        ACTIONS["create_rule"],
                        ACTIONS["modify_listener"],
                        ACTIONS["modify_rule"],
                        ACTIONS["delete_rule"],
                        ACTIONS["set_rule_priorities"],
                        TAGGING,
                    ]
                ),
                "Resource": [listener_arn, rules],
            },
            {
                "Sid": "ManageStranglersTargetGroups",
                "Effect": "Allow",
                "Action": sorted(
                    [
                        ACTIONS["create_target_group"],
                        ACTIONS["register_targets"],
                        ACTIONS["delete_target_group"],
                        TAGGING,
                    ]
                ),
                "Resource": groups,
            },
        ],
    }
