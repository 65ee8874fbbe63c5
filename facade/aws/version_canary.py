"""A Lambda backend's ``canary:`` block as CloudFormation: what ``render sam`` and
``render apigw --cloudformation`` add for the two mechanisms.

* ``mechanism: alias`` (``render sam``): the function's alias as an ``AWS::Lambda::Alias``
  of its own — on the ``from`` version, with ``RoutingConfig.AdditionalVersionWeights``
  giving the ``to`` version the block's weight — instead of SAM's ``AutoPublishAlias``
  (which would move the alias to each new deployment by itself). Versions are
  published by the release pipeline (``aws lambda publish-version``) and named here.
* ``mechanism: stage`` (``render apigw --cloudformation``): a REST API (HTTP APIs have no
  canary settings) whose integration calls ``function:${stageVariables.VARIABLE}``, its
  deployment and its stage with the variable naming the ``from`` alias and a canary
  (``PercentTraffic``, ``StageVariableOverrides`` naming the ``to`` alias), and one
  ``AWS::Lambda::Permission`` per alias: API Gateway needs the right to invoke each
  qualified function it may call. The stage also logs every request it answers
  (``AccessLogSetting``, a JSON line of ``$context`` variables) to a log group created
  here (``stage.log_group``, by default ``/strangler/API/STAGE``), and API Gateway writes
  each canary request's line to that group with ``/Canary`` appended as well — created
  here too, with the same retention, so that its metric filters have a group to sit on
  before the first canary request. Three metric filters on each group publish what the
  analysis reads (``facade.aws.metrics.stage_access_logs``): requests, 5xx answers and
  the response latency, with dimensions taken from fields of the line (a filter's
  dimension can only be a field of the log event: ``ApiName`` from a field holding the
  API's name, ``Stage`` from ``$context.stage``).

Both render what the block says now; ``strangler canary start --apply`` moves the same
settings step by step, so a stack update after a step leaves them where they were.
"""

from __future__ import annotations

import json
from typing import Any

from facade.aws.cloudformation import PARTITION_ARN, logical_id
from facade.aws.metrics import ACCESS_LOG_DIMENSIONS, ArmMetrics, stage_access_logs
from facade.rollout.plan import Mechanism, StageCanary, VersionCanary
from facade.routing.model import Backend, RoutingTable


def _weight(canary: VersionCanary) -> float:
    return canary.share / 1000


def alias_resource(backend: Backend, function_id: str) -> dict[str, Any] | None:
    """The alias of a backend whose versions are canaried by alias weights (None for any
    other backend: SAM's AutoPublishAlias keeps it)."""
    canary = backend.canary
    if canary is None or canary.mechanism is not Mechanism.ALIAS:
        return None
    properties: dict[str, Any] = {
        "FunctionName": {"Ref": function_id},
        "Name": str(backend.aws.get("alias", "live")),
        "FunctionVersion": canary.baseline,
    }
    if canary.canary != canary.baseline:
        properties["RoutingConfig"] = {
            "AdditionalVersionWeights": [
                {"FunctionVersion": canary.canary, "FunctionWeight": _weight(canary)}
            ]
        }
    return {"Type": "AWS::Lambda::Alias", "Properties": properties}


def _function_arn(backend: Backend, qualifier: str) -> dict[str, str]:
    return {
        "Fn::Sub": f"{PARTITION_ARN}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:"
        f"{backend.aws.get('function', backend.name)}:{qualifier}"
    }


def access_log_format(stage: StageCanary) -> str:
    """One JSON line per request, every value quoted (as API Gateway's own JSON example):
    a value API Gateway leaves empty cannot break the line for the filters."""
    fields = {
        "requestId": "$context.requestId",
        "api": stage.api,  # the ApiName dimension's value
        "stage": "$context.stage",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationLatency": "$context.integrationLatency",
    }
    return json.dumps(fields, separators=(",", ":"))


def _filters(arm: ArmMetrics) -> list[tuple[str, str, str, str]]:
    """(metric, filter pattern, metric value, unit) of each metric of ``arm``."""
    return [
        (arm.requests, "{ $.requestId = * }", "1", "Count"),
        (arm.errors[0], '{ $.status = "5*" }', "1", "Count"),
        (arm.latency, "{ $.responseLatency = * }", "$.responseLatency", "Milliseconds"),
    ]


def access_log_resources(name: str, stage: StageCanary) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resources, the stage's AccessLogSetting): the stage's access-log group and its
    canary's, with the metric filters of each."""
    resources: dict[str, Any] = {}
    groups = (
        (logical_id("AccessLogs", name), stage.access_logs, False),
        (logical_id("CanaryAccessLogs", name), stage.canary_access_logs, True),
    )
    for group_id, group_name, canary in groups:
        resources[group_id] = {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": group_name, "RetentionInDays": stage.log_retention},
        }
        arm = stage_access_logs(stage.api, stage.stage, canary=canary)
        for metric, pattern, value, unit in _filters(arm):
            resources[logical_id("MetricFilter", f"{name} {metric}")] = {
                "Type": "AWS::Logs::MetricFilter",
                "Properties": {
                    "LogGroupName": {"Ref": group_id},
                    "FilterPattern": pattern,
                    "MetricTransformations": [
                        {
                            "MetricNamespace": arm.namespace,
                            "MetricName": metric,
                            "MetricValue": value,
                            "Unit": unit,
                            "Dimensions": [
                                {"Key": key, "Value": f"$.{field}"}
                                for key, field in ACCESS_LOG_DIMENSIONS
                            ],
                        }
                    ],
                },
            }
    setting = {
        "DestinationArn": {
            "Fn::Sub": f"{PARTITION_ARN}:logs:${{AWS::Region}}:${{AWS::AccountId}}:"
            f"log-group:${{{groups[0][0]}}}"
        },
        "Format": access_log_format(stage),
    }
    return resources, setting


def stage_resources(table: RoutingTable) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resources, outputs) of every backend whose versions are canaried by a stage."""
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for name, backend in sorted(table.backends.items()):
        canary = backend.canary
        if canary is None or canary.stage is None:
            continue
        api_id, proxy_id = logical_id("RestApi", name), logical_id("RestApiProxy", name)
        deployment_id, stage_id = logical_id("Deployment", name), logical_id("Stage", name)
        variable = canary.stage.variable
        uri = {
            "Fn::Sub": f"{PARTITION_ARN}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/"
            f"functions/{PARTITION_ARN}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:"
            f"{backend.aws.get('function', name)}:${{!stageVariables.{variable}}}/invocations"
        }
        resources[api_id] = {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": canary.stage.api,
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        }
        resources[proxy_id] = {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": api_id},
                "ParentId": {"Fn::GetAtt": [api_id, "RootResourceId"]},
                "PathPart": "{proxy+}",
            },
        }
        methods = []
        for method_id, resource in (
            (logical_id("RootMethod", name), {"Fn::GetAtt": [api_id, "RootResourceId"]}),
            (logical_id("ProxyMethod", name), {"Ref": proxy_id}),
        ):
            methods.append(method_id)
            resources[method_id] = {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "RestApiId": {"Ref": api_id},
                    "ResourceId": resource,
                    "HttpMethod": "ANY",
                    "AuthorizationType": "NONE",
                    "Integration": {
                        "Type": "AWS_PROXY",
                        "IntegrationHttpMethod": "POST",
                        "Uri": uri,
                    },
                },
            }
        resources[deployment_id] = {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": methods,
            "Properties": {"RestApiId": {"Ref": api_id}},
        }
        logs, access_log = access_log_resources(name, canary.stage)
        resources.update(logs)
        stage: dict[str, Any] = {
            "RestApiId": {"Ref": api_id},
            "StageName": canary.stage.stage,
            "DeploymentId": {"Ref": deployment_id},
            "Variables": {variable: canary.baseline},
            "AccessLogSetting": access_log,
        }
        if canary.canary != canary.baseline:
            stage["CanarySetting"] = {
                "DeploymentId": {"Ref": deployment_id},
                "PercentTraffic": canary.share / 10,
                "StageVariableOverrides": {variable: canary.canary},
                "UseStageCache": False,
            }
        # canary traffic only once both groups and their filters exist: no line uncounted,
        # and API Gateway never creates the /Canary group before the template does
        resources[stage_id] = {
            "Type": "AWS::ApiGateway::Stage",
            # (its own group it references already)
            "DependsOn": sorted(set(logs) - {logical_id("AccessLogs", name)}),
            "Properties": stage,
        }
        for alias in dict.fromkeys((canary.baseline, canary.canary)):
            resources[logical_id("InvokePermission", f"{name} {alias}")] = {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "Action": "lambda:InvokeFunction",
                    "FunctionName": _function_arn(backend, alias),
                    "Principal": "apigateway.amazonaws.com",
                    "SourceArn": {
                        "Fn::Sub": f"{PARTITION_ARN}:execute-api:${{AWS::Region}}:"
                        f"${{AWS::AccountId}}:${{{api_id}}}/*"
                    },
                },
            }
        outputs[stage_id + "Url"] = {
            "Value": {
                "Fn::Sub": f"https://${{{api_id}}}.execute-api.${{AWS::Region}}."
                f"${{AWS::URLSuffix}}/{canary.stage.stage}"
            }
        }
    return resources, outputs


__all__ = ["access_log_format", "access_log_resources", "alias_resource", "stage_resources"]
