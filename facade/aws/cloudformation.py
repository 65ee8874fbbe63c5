"""``strangler render alb``: the desired listener as a CloudFormation template.

What it creates, once, in front of the monolith's EC2 instances:

* a target group per backend a route lists (at 0 % too) — the monolith's with its instances
  (``aws.instances``, ``aws.port``), each Lambda's with the function alias registered
  and the ``AWS::Lambda::Permission`` that lets Elastic Load Balancing invoke it, each
  ECS service's with ``ip`` targets (the service registers its tasks); health checks on
  ``aws.health_check``. A backend with ``aws.target_group_arn`` uses that group instead;
* the listener (HTTP, or HTTPS with the ``CertificateArn`` parameter) whose default
  action is routing.yaml's ``default``;
* one listener rule per route, priority and conditions as in the file, a weighted
  ``ForwardConfig`` naming the backends with a share (one at 0 % is left out, see
  ``facade.aws.alb``) and, for a sticky route, ``TargetGroupStickinessConfig``.

The output is deterministic: the same table renders the same bytes (golden files in the
tests). Later flips go through ``strangler apply``; re-rendering and updating the stack
gives the same rules.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML

from facade.aws.alb import Listener, TargetGroup
from facade.routing.model import Backend, BackendKind

PARTITION_ARN = "arn:${AWS::Partition}"


def logical_id(prefix: str, name: str) -> str:
    """CloudFormation's logical ids are alphanumeric: ``orders-v2`` → ``OrdersV2``."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in name).split() if w]
    return prefix + "".join(w[:1].upper() + w[1:] for w in words)


def qualified_function(aws: Mapping[str, object]) -> str:
    """A Lambda backend's ``function[:alias]``: what the ALB and the API invoke."""
    alias = aws.get("alias")
    return f"{aws['function']}:{alias}" if alias else str(aws["function"])


def function_arn(aws: Mapping[str, object]) -> dict[str, str]:
    """The ARN of a Lambda backend's function (alias) in the stack's partition, region and
    account."""
    return {
        "Fn::Sub": f"{PARTITION_ARN}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:"
        f"{qualified_function(aws)}"
    }


def aws_int(backend: Backend, key: str, default: int) -> int:
    """A whole-number setting of the backend's aws block (the loader checked its range)."""
    value = backend.aws.get(key, default)
    return value if isinstance(value, int) else default


def _health_check(group: TargetGroup) -> dict[str, Any]:
    return {
        "HealthCheckEnabled": True,
        "HealthCheckPath": str(group.aws.get("health_check", "/")),
        "HealthCheckIntervalSeconds": 15,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 3,
        "Matcher": {"HttpCode": str(group.aws.get("health_codes", "200-399"))},
    }


def _vpc(group: TargetGroup) -> Any:
    return group.aws.get("vpc_id") or {"Ref": "VpcId"}


def target_group_resources(group: TargetGroup) -> dict[str, Any]:
    """The target group's resources (and the Lambda permission it needs)."""
    tg_id = logical_id("TargetGroup", group.backend)
    properties: dict[str, Any] = {"Name": group.name}
    resource: dict[str, Any] = {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup"}
    resources: dict[str, Any] = {}
    if group.kind is BackendKind.MONOLITH:
        port = int(group.aws.get("port", 80))
        properties.update(
            TargetType="instance",
            Protocol="HTTP",
            Port=port,
            VpcId=_vpc(group),
            Targets=[{"Id": str(i), "Port": port} for i in group.aws.get("instances", [])],
            **_health_check(group),
        )
    elif group.kind is BackendKind.ECS:
        properties.update(
            TargetType="ip",
            Protocol="HTTP",
            Port=int(group.aws["container_port"]),
            VpcId=_vpc(group),
            **_health_check(group),
        )
    else:  # lambda
        permission_id = logical_id("InvokePermission", group.backend)
        resources[permission_id] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": function_arn(group.aws),
                "Principal": "elasticloadbalancing.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": f"{PARTITION_ARN}:elasticloadbalancing:${{AWS::Region}}:"
                    f"${{AWS::AccountId}}:targetgroup/{group.name}/*"
                },
            },
        }
        resource["DependsOn"] = permission_id
        properties.update(
            TargetType="lambda",
            Targets=[{"Id": function_arn(group.aws)}],
            TargetGroupAttributes=[
                {
                    "Key": "lambda.multi_value_headers.enabled",
                    "Value": "true" if group.aws.get("multi_value_headers") else "false",
                }
            ],
        )
    resource["Properties"] = properties
    resources[tg_id] = resource
    return resources


def _arns(listener: Listener) -> dict[str, Any]:
    return {
        g.backend: g.arn if g.arn else {"Ref": logical_id("TargetGroup", g.backend)}
        for g in listener.target_groups
    }


def template(listener: Listener, source: str) -> dict[str, Any]:
    arns = _arns(listener)
    resources: dict[str, Any] = {}
    for group in listener.target_groups:
        if group.arn is None:
            resources.update(target_group_resources(group))
    resources["Listener"] = {
        "Type": "AWS::ElasticLoadBalancingV2::Listener",
        "Properties": {
            "LoadBalancerArn": {"Ref": "LoadBalancerArn"},
            "Port": {"Ref": "ListenerPort"},
            "Protocol": {"Fn::If": ["UseHttps", "HTTPS", "HTTP"]},
            "Certificates": {
                "Fn::If": [
                    "UseHttps",
                    [{"CertificateArn": {"Ref": "CertificateArn"}}],
                    {"Ref": "AWS::NoValue"},
                ]
            },
            "DefaultActions": listener.default.as_aws(arns),
        },
    }
    for rule in listener.rules:
        resources[logical_id("Rule", rule.route)] = {
            "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
            "Properties": {
                "ListenerArn": {"Ref": "Listener"},
                "Priority": rule.priority,
                "Conditions": [c.as_aws() for c in rule.body.conditions],
                "Actions": rule.body.action.as_aws(arns),
            },
        }
    outputs: dict[str, Any] = {"ListenerArn": {"Value": {"Ref": "Listener"}}}
    for group in listener.target_groups:
        if group.arn is None:
            tg_id = logical_id("TargetGroup", group.backend)
            outputs[tg_id + "Arn"] = {"Value": {"Ref": tg_id}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler: ALB listener, rules and target groups from {source}",
        "Parameters": {
            "LoadBalancerArn": {
                "Type": "String",
                "Description": "The Application Load Balancer in front of the monolith",
            },
            "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "The VPC of the targets"},
            "ListenerPort": {"Type": "Number", "Default": 80, "MinValue": 1, "MaxValue": 65535},
            "CertificateArn": {
                "Type": "String",
                "Default": "",
                "Description": "ACM certificate for HTTPS; empty: an HTTP listener",
            },
        },
        "Conditions": {"UseHttps": {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


def dump(document: dict[str, Any], form: str) -> str:
    """YAML (block style, keys in the order built) or JSON, ending with a newline."""
    if form == "json":
        return json.dumps(document, indent=2) + "\n"
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096  # ARNs stay on one line
    yaml.representer.ignore_aliases = lambda _: True  # CloudFormation rejects YAML aliases
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
