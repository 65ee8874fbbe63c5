"""``strangler render rollout ROUTE``: a Step Functions state machine that runs the route's
rollout plan on AWS, unattended, so a rollout does not depend on a laptop staying awake.

::

    Start ─► Analyse ─► Decide ─┬─ progressing, baking ─► Wait (interval) ─► Analyse
     (Pass)  (the task) (Choice) ├─ promoted ─► Promoted (Succeed)
                                 ├─ rolled_back ─► RolledBack (Fail, cause: the reason)
                                 └─ paused ─► Paused ─┬─ (resume, abort) ─► Analyse
                                                      └─ (no topic, timeout) ─► StillPaused

``Analyse`` invokes the task Lambda (``facade.rollout.task.handler``: the same analysis
and engine as ``strangler rollout``, packaged) with ``{route, state}`` and keeps what it
returns; Lambda's own transient errors are retried, and a task that still fails ends the
execution as ``TaskFailed`` with the weights as they were (the alarms of ``render
alarms`` keep watching). ``Paused`` waits for a human when the ``PauseTopicArn``
parameter names an SNS topic: the topic gets the reason and a task token, and
``aws stepfunctions send-task-success --task-token TOKEN --task-output
'{"command": "resume"}'`` (or ``"abort"``) continues the same execution; without a topic, or
after a week without an answer, the execution fails as ``Paused`` with the reason (start
a new one with ``{"state": LAST STATE, "command": "resume"}`` to continue).

The template also holds the task's function (code from the ``CodeBucket``/``CodeKey``
zip: the toolkit, its dependencies and the routing file) and two roles of least
privilege: the task may read metrics (``cloudwatch:GetMetricData``, which takes no
resource), read the listener (``Describe*``, which take none either) and modify only the
rules of the listener ``ListenerArn``; the state machine may invoke only the task and
publish only to the pause topic.

The wait is the plan's ``interval`` but at least 60 s: the load balancer publishes its
metrics once a minute, so a shorter wait reads the same numbers again. A standard
execution keeps at most 25,000 history events, about 2,500 analyses: ``render`` refuses
a plan whose longest run (every step to its ``max_wait``, then the bake) needs more.
"""

from __future__ import annotations

import math
from typing import Any

from facade.aws import iam
from facade.aws.alb import DEFAULT_PREFIX
from facade.aws.sam import ARCHITECTURE, RUNTIME
from facade.exceptions import ConfigError
from facade.rollout.plan import OnInconclusive, RolloutPlan
from facade.rollout.task import ENV_LISTENER, ENV_PREFIX, ENV_ROUTING, HANDLER
from facade.routing.model import RoutingTable

MIN_WAIT = 60  # seconds: the load balancer's metrics come a minute at a time
MAX_ANALYSES = 2_500  # a standard execution's 25,000 history events, ~10 per analysis
PAUSE_TIMEOUT = 7 * 86_400  # seconds a paused execution waits for a human
READS = ("describe_listeners", "describe_rules", "describe_tags", "describe_target_groups")
LAMBDA_RETRIES = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


def wait_seconds(plan: RolloutPlan) -> int:
    return max(MIN_WAIT, math.ceil(plan.interval))


def longest_run(plan: RolloutPlan) -> float:
    """Seconds the plan may take at most: every step to its ``max_wait``, then the bake
    (``hold`` at ``max_wait`` has no end and is refused)."""
    return sum(step.max_wait for step in plan.steps) + plan.bake


def definition(route: str, plan: RolloutPlan) -> dict[str, Any]:
    """The Amazon States Language of the loop (``${TaskArn}``, ``${PauseTopicArn}`` are
    the template's substitutions)."""
    resume = (
        "aws stepfunctions send-task-success --task-token TOKEN --task-output "
        '\'{"command": "resume"}\' (or "abort")'
    )
    waiting = {
        "Type": "Task",
        "Comment": "waits for a human: send-task-success with a command",
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
        "Parameters": {
            "TopicArn": "${PauseTopicArn}",
            "Subject": f"strangler: the rollout of {route} is paused",
            "Message": {
                "route.$": "$.route",
                "reason.$": "$.state.paused_reason",
                "token.$": "$$.Task.Token",
                "continue": resume,
            },
        },
        "TimeoutSeconds": PAUSE_TIMEOUT,
        "ResultSelector": {"command.$": "$.command"},
        "ResultPath": "$.request",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "StillPaused"}],
        "Next": "Analyse",
    }
    return {
        "Comment": f"strangler: the rollout of route {route} to {plan.to}, "
        + ", ".join(f"{s.percent:g} %" for s in plan.steps),
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Pass",
                "Comment": "the execution's input ({} or {state, command}) as the request",
                "Parameters": {"route": route, "request.$": "$"},
                "Next": "Analyse",
            },
            "Analyse": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${TaskArn}", "Payload.$": "$"},
                "ResultSelector": {"route.$": "$.Payload.route", "state.$": "$.Payload.state"},
                "Retry": [
                    {
                        "ErrorEquals": LAMBDA_RETRIES,
                        "IntervalSeconds": 2,
                        "MaxAttempts": 6,
                        "BackoffRate": 2,
                    },
                    {
                        "ErrorEquals": ["States.TaskFailed"],
                        "IntervalSeconds": 10,
                        "MaxAttempts": 3,
                        "BackoffRate": 2,
                    },
                ],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "TaskFailed"}
                ],
                "Next": "Decide",
            },
            "Decide": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.state.phase", "StringEquals": "promoted", "Next": "Promoted"},
                    {
                        "Variable": "$.state.phase",
                        "StringEquals": "rolled_back",
                        "Next": "RolledBack",
                    },
                    {"Variable": "$.state.phase", "StringEquals": "paused", "Next": "Paused"},
                ],
                "Default": "Wait",
            },
            "Wait": {"Type": "Wait", "Seconds": wait_seconds(plan), "Next": "Analyse"},
            "Paused": {
                "Fn::If": [
                    "WaitForHuman",
                    waiting,
                    {"Type": "Pass", "Comment": "no pause topic", "Next": "StillPaused"},
                ]
            },
            "StillPaused": {
                "Type": "Fail",
                "Error": "Paused",
                "CausePath": "$.state.paused_reason",
            },
            "Promoted": {"Type": "Succeed"},
            "RolledBack": {"Type": "Fail", "Error": "RolledBack", "CausePath": "$.state.reason"},
            "TaskFailed": {"Type": "Fail", "Error": "TaskFailed", "CausePath": "$.error.Cause"},
        },
    }


def _role(service: str, statements: list[dict[str, Any]], managed: list[Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        "Policies": [
            {
                "PolicyName": "rollout",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }
        ],
    }
    if managed:
        properties["ManagedPolicyArns"] = managed
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def _listener_rules() -> dict[str, Any]:
    """``…:listener/app/LB/ID/ID`` → ``…:listener-rule/app/LB/ID/ID/*``."""
    split = {"Fn::Split": [":listener/", {"Ref": "ListenerArn"}]}
    return {
        "Fn::Join": [
            "",
            [{"Fn::Select": [0, split]}, ":listener-rule/", {"Fn::Select": [1, split]}, "/*"],
        ]
    }


def template(table: RoutingTable, route: str, source: str) -> dict[str, Any]:
    try:
        found = table.route(route)
    except KeyError as exc:
        raise ConfigError(f"{table.source}: {exc.args[0]}") from exc
    plan = found.rollout
    if plan is None:
        raise ConfigError(
            f"{table.source}:{found.line}: routes[{route}] has no rollout block; add one "
            "(README: routing.yaml reference, rollout)"
        )
    if plan.on_inconclusive is OnInconclusive.HOLD:
        raise ConfigError(
            f"{table.source}:{plan.line}: routes[{route}].rollout.on_inconclusive: hold may "
            "wait forever, longer than a Step Functions execution keeps its history; use "
            "pause or rollback for a rollout on AWS"
        )
    analyses = longest_run(plan) / wait_seconds(plan)
    if analyses > MAX_ANALYSES:
        raise ConfigError(
            f"{table.source}:{plan.line}: routes[{route}].rollout: up to {analyses:.0f} "
            f"analyses (every max_wait, then the bake, every {wait_seconds(plan)} s); one "
            f"execution holds about {MAX_ANALYSES}: shorten max_wait or lengthen interval"
        )
    task_statements: list[dict[str, Any]] = [
        {"Sid": "ReadMetrics", "Effect": "Allow", "Action": ["cloudwatch:GetMetricData"],
         "Resource": "*"},
        {"Sid": "ReadTheListener", "Effect": "Allow",
         "Action": sorted(iam.ACTIONS[op] for op in READS), "Resource": "*"},
        {"Sid": "ChangeTheListenersRules", "Effect": "Allow",
         "Action": [iam.ACTIONS["modify_rule"]], "Resource": _listener_rules()},
    ]  # fmt: skip
    task_arn = {"Fn::GetAtt": ["TaskFunction", "Arn"]}
    machine_statements: list[dict[str, Any]] = [
        {"Sid": "RunTheTask", "Effect": "Allow", "Action": ["lambda:InvokeFunction"],
         "Resource": [task_arn, {"Fn::Join": [":", [task_arn, "*"]]}]},
        {"Fn::If": ["WaitForHuman",
                    {"Sid": "AskAHuman", "Effect": "Allow", "Action": ["sns:Publish"],
                     "Resource": {"Ref": "PauseTopicArn"}},
                    {"Ref": "AWS::NoValue"}]},
    ]  # fmt: skip
    basic = {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler: the unattended rollout of route {route} from {source} "
        "(Step Functions; the task reads CloudWatch and changes only the route's ALB rule)",
        "Parameters": {
            "ListenerArn": {
                "Type": "String",
                "AllowedPattern": "^arn:[\\w-]+:elasticloadbalancing:.+:listener/app/.+$",
                "Description": "The ALB listener whose rule the rollout moves",
            },
            "CodeBucket": {"Type": "String", "Description": "S3 bucket of the task's zip"},
            "CodeKey": {
                "Type": "String",
                "Description": "S3 key of the task's zip: the toolkit, its dependencies "
                "and the routing file",
            },
            "RoutingFile": {
                "Type": "String",
                "Default": "routing.yaml",
                "Description": "The routing file's path inside the zip",
            },
            "TargetGroupPrefix": {
                "Type": "String",
                "Default": DEFAULT_PREFIX,
                "Description": "Target groups `strangler apply` created are PREFIX-BACKEND",
            },
            "PauseTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic asked to resume or abort a paused rollout; empty: "
                "a pause ends the execution",
            },
        },
        "Conditions": {
            "WaitForHuman": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PauseTopicArn"}, ""]}]}
        },
        "Resources": {
            "TaskRole": _role("lambda.amazonaws.com", task_statements, [basic]),
            "TaskFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Description": f"strangler: one analysis of the rollout of {route}",
                    "Runtime": RUNTIME,
                    "Architectures": [ARCHITECTURE],
                    "Handler": HANDLER,
                    "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                    "Role": {"Fn::GetAtt": ["TaskRole", "Arn"]},
                    "Timeout": 60,
                    "MemorySize": 256,
                    "Environment": {
                        "Variables": {
                            ENV_LISTENER: {"Ref": "ListenerArn"},
                            ENV_PREFIX: {"Ref": "TargetGroupPrefix"},
                            ENV_ROUTING: {"Ref": "RoutingFile"},
                        }
                    },
                },
            },
            "MachineRole": _role("states.amazonaws.com", machine_statements, []),
            "StateMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineType": "STANDARD",
                    "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
                    "Definition": definition(route, plan),
                    "DefinitionSubstitutions": {
                        "TaskArn": task_arn,
                        "PauseTopicArn": {"Ref": "PauseTopicArn"},
                    },
                },
            },
        },
        "Outputs": {
            "StateMachineArn": {
                "Description": "Start the rollout: aws stepfunctions start-execution "
                "--state-machine-arn ARN --input '{}'",
                "Value": {"Ref": "StateMachine"},
            },
            "TaskFunctionArn": {"Value": task_arn},
        },
    }


__all__ = ["definition", "longest_run", "template", "wait_seconds"]
