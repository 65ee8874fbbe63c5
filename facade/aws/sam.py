"""``strangler render sam``: the Lambda backends and the data sync's queues as a SAM
template.

* one ``AWS::Serverless::Function`` per Lambda backend (``aws.function``, the handler,
  ``aws.code``, ``aws.timeout``, ``aws.memory``, ``aws.environment``, ``aws.policies``:
  SAM policy templates for the function's own data) published under
  ``aws.alias`` with ``AutoPublishAlias`` — the alias the ALB target group and the API
  invoke — and, with ``--deployment-preference``, CodeDeploy shifting that alias;
* for each sync stream whose target is a Lambda backend, a consumer function (the
  stream's ``consumer`` handler, same code) with an SQS event source on the stream's queue
  and ``ReportBatchItemFailures``, so a failing record is retried alone and reaches the
  DLQ after ``max_receives`` (SAM grants it the queue's read permissions);
* every stream's FIFO queue and FIFO dead-letter queue with the redrive policy, from the
  same definitions that create the local queues;
* for a backend whose ``canary:`` block uses ``mechanism: alias``, the alias itself on the
  serving version with the new version's weight (``facade.aws.version_canary``).

What SQS or Lambda would refuse is refused here: a consumer whose function may run longer
than its queue's visibility timeout (the event source mapping needs the timeout to be at
least the function's), a Lambda target without a ``consumer``.
"""

from __future__ import annotations

from typing import Any

from facade.aws.cloudformation import aws_int, logical_id
from facade.aws.version_canary import alias_resource
from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind, RoutingTable, SyncStream

RUNTIME = "python3.11"  # every Lambda function the toolkit renders
ARCHITECTURE = "x86_64"

DEFAULT_TIMEOUT = 30
DEFAULT_MEMORY = 512
DEPLOYMENT_TYPES = (
    "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes",
    "Canary10Percent30Minutes", "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes", "AllAtOnce",
)  # fmt: skip


def _handler(spec: str) -> str:
    """``package.module:function`` → Lambda's ``package/module.function`` form
    (``package.module.function`` is accepted too)."""
    module, _, function = spec.partition(":")
    return f"{module}.{function}"


def _function(
    table: RoutingTable, backend: Backend, handler: str, name: str | None
) -> dict[str, Any]:
    aws = backend.aws
    properties: dict[str, Any] = {
        "Handler": _handler(handler),
        "CodeUri": str(aws.get("code", f"dist/{backend.name}-lambda.zip")),
        "Timeout": aws_int(backend, "timeout", DEFAULT_TIMEOUT),
        "MemorySize": aws_int(backend, "memory", DEFAULT_MEMORY),
    }
    if name:
        properties["FunctionName"] = name
    policies = aws.get("policies")
    if isinstance(policies, list) and policies:
        properties["Policies"] = policies
    environment = aws.get("environment")
    variables = (
        {str(k): str(v) for k, v in environment.items()} if isinstance(environment, dict) else {}
    )
    # a side of two-way streams reads their lifecycle and id split from here
    variables.update(table.sync_environment(backend.name))
    if variables:
        properties["Environment"] = {"Variables": variables}
    return properties


def _queues(stream: SyncStream) -> dict[str, Any]:
    queue_id, dlq_id = logical_id("Queue", stream.name), logical_id("DeadLetters", stream.name)
    return {
        dlq_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stream.dlq,
                "FifoQueue": True,
                "MessageRetentionPeriod": stream.dlq_retention,
            },
        },
        queue_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": stream.queue,
                "FifoQueue": True,
                "ContentBasedDeduplication": False,  # the publisher sets the deduplication id
                "VisibilityTimeout": stream.visibility_timeout,
                "MaximumMessageSize": stream.max_message_bytes,
                "MessageRetentionPeriod": stream.retention,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                    "maxReceiveCount": stream.max_receives,
                },
            },
        },
    }


def _consumer(table: RoutingTable, stream: SyncStream, backend: Backend) -> dict[str, Any]:
    if stream.consumer is None:
        raise ConfigError(
            f"{table.source}: sync.{stream.name}: its target {backend.name} is a Lambda "
            "function: name the handler that takes the queue's batches with "
            "consumer: module:function"
        )
    properties = _function(table, backend, stream.consumer, None)
    if properties["Timeout"] > stream.visibility_timeout:
        raise ConfigError(
            f"{table.source}: sync.{stream.name}: visibility_timeout {stream.visibility_timeout}"
            f" s is shorter than the consumer's Lambda timeout {properties['Timeout']} s; SQS "
            "event sources need the queue's visibility timeout to be at least the function's"
        )
    properties["Events"] = {
        "Queue": {
            "Type": "SQS",
            "Properties": {
                "Queue": {"Fn::GetAtt": [logical_id("Queue", stream.name), "Arn"]},
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        }
    }
    return {"Type": "AWS::Serverless::Function", "Properties": properties}


def template(table: RoutingTable, source: str, deployment: str | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    lambdas = {n: b for n, b in table.backends.items() if b.kind is BackendKind.LAMBDA}
    for name, backend in lambdas.items():
        if backend.handler is None or "function" not in backend.aws:
            raise ConfigError(
                f"{table.source}: backends.{name}: a Lambda backend needs handler and "
                "aws.function to be deployed"
            )
        properties = _function(table, backend, backend.handler, str(backend.aws["function"]))
        function_id = logical_id("Function", name)
        alias = alias_resource(backend, function_id)
        if alias is not None:  # the canary block moves the alias: it is ours, not SAM's
            if deployment:
                raise ConfigError(
                    f"{table.source}: backends.{name}.canary: the canary block moves the "
                    "alias between versions itself; drop --deployment-preference"
                )
            resources[function_id + "Alias"] = alias
            outputs[function_id + "Alias"] = {"Value": {"Ref": function_id + "Alias"}}
        else:
            properties["AutoPublishAlias"] = str(backend.aws.get("alias", "live"))
            if deployment:
                properties["DeploymentPreference"] = {"Type": deployment}
            outputs[function_id + "Alias"] = {"Value": {"Ref": f"{function_id}.Alias"}}
        resources[function_id] = {"Type": "AWS::Serverless::Function", "Properties": properties}
    for stream in table.sync:
        resources.update(_queues(stream))
        queue_id = logical_id("Queue", stream.name)
        outputs[queue_id + "Url"] = {"Value": {"Ref": queue_id}}
        target = table.backends[stream.target]
        if target.kind is BackendKind.LAMBDA:
            resources[logical_id("Consumer", stream.name)] = _consumer(table, stream, target)
    if not resources:
        raise ConfigError(
            f"{table.source}: no Lambda backend and no sync stream: nothing to render"
        )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"strangler: Lambda backends and sync queues from {source}",
        "Globals": {"Function": {"Runtime": RUNTIME, "Architectures": [ARCHITECTURE]}},
        "Resources": resources,
        "Outputs": outputs,
    }
