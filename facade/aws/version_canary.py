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
  qualified function it may call.

Both render what the block says now; ``strangler canary start --apply`` moves the same
settings step by step, so a stack update after a step leaves them where they were.
"""

from __future__ import annotations

from typing import Any

from facade.aws.cloudformation import PARTITION_ARN, logical_id
from facade.rollout.plan import Mechanism, VersionCanary
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
        stage: dict[str, Any] = {
            "RestApiId": {"Ref": api_id},
            "StageName": canary.stage.stage,
            "DeploymentId": {"Ref": deployment_id},
            "Variables": {variable: canary.baseline},
        }
        if canary.canary != canary.baseline:
            stage["CanarySetting"] = {
                "DeploymentId": {"Ref": deployment_id},
                "PercentTraffic": canary.share / 10,
                "StageVariableOverrides": {variable: canary.canary},
                "UseStageCache": False,
            }
        resources[stage_id] = {"Type": "AWS::ApiGateway::Stage", "Properties": stage}
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


__all__ = ["alias_resource", "stage_resources"]
