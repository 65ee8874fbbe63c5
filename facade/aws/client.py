"""The one module of ``facade.aws`` that calls Elastic Load Balancing: a thin typed wrapper
over boto3's ELBv2 client that turns AWS errors into ``AwsError`` (operation, code,
message). ``boto_client`` is the one place a boto3 client of the facade is made
(CloudWatch's wrapper, ``facade.aws.cloudwatch``, uses it too).

The same code reaches AWS or the local stand-in (moto's server): ``connect`` takes an
endpoint for the stand-in and nothing for AWS, where boto3's usual configuration
(environment, profile, instance role) applies. Against the stand-in boto3 retries once
at most: moto answers calls it does not implement with HTTP 500, which boto3 would
otherwise retry for seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from facade.exceptions import AwsError

Service = Literal["elbv2", "cloudwatch", "lambda", "apigateway"]  # the services it calls


def boto_client(
    service: Service, endpoint: str | None = None, credentials: Mapping[str, Any] | None = None
) -> Any:
    """A boto3 client of ``service``: AWS with boto3's usual configuration, or the stand-in
    at ``endpoint`` (retried once at most)."""
    if endpoint is None:
        return boto3.client(service)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    given: dict[str, Any] = dict(credentials or {})
    return boto3.client(service, endpoint_url=endpoint, config=config, **given)


def failed(operation: str, exc: Exception) -> AwsError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return AwsError(f"{operation}: {error.get('Code', '?')}: {error.get('Message', exc)}")
    return AwsError(f"{operation}: {exc}")


def call(client: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    """``client.operation(**kwargs)``, its errors as ``AwsError`` (operation, code,
    message)."""
    try:
        answer: dict[str, Any] = getattr(client, operation)(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise failed(operation, exc) from exc
    return answer


class AwsClient:
    """A typed wrapper of one service's boto3 client (``service``)."""

    service: ClassVar[Service]

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def connect(
        cls, endpoint: str | None = None, credentials: Mapping[str, Any] | None = None
    ) -> Self:
        return cls(boto_client(cls.service, endpoint, credentials))

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        return call(self._client, operation, **kwargs)


class ElbClient(AwsClient):
    service = "elbv2"

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            answer = self.call(operation, **kwargs, **({"Marker": marker} if marker else {}))
            yield from answer.get(key, [])
            marker = answer.get("NextMarker")
            if not marker:
                return

    # -- reads -------------------------------------------------------------------------

    def listener(self, arn: str) -> dict[str, Any]:
        (found,) = self.call("describe_listeners", ListenerArns=[arn])["Listeners"]
        return dict(found)

    def rules(self, listener_arn: str) -> list[dict[str, Any]]:
        return list(self._pages("describe_rules", "Rules", ListenerArn=listener_arn))

    def tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        """Tags per resource (ELBv2 answers at most 20 ARNs a call)."""
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), 20):
            answer = self.call("describe_tags", ResourceArns=list(arns[start : start + 20]))
            for description in answer.get("TagDescriptions", []):
                found[description["ResourceArn"]] = {
                    t["Key"]: t["Value"] for t in description.get("Tags", [])
                }
        return found

    def target_groups_named(self, names: Sequence[str]) -> dict[str, str]:
        """name → ARN of those that exist."""
        found: dict[str, str] = {}
        for name in names:
            try:
                answer = self._client.describe_target_groups(Names=[name])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "TargetGroupNotFound":
                    continue
                raise failed("describe_target_groups", exc) from exc
            except BotoCoreError as exc:
                raise failed("describe_target_groups", exc) from exc
            for group in answer.get("TargetGroups", []):
                found[group["TargetGroupName"]] = group["TargetGroupArn"]
        return found

    # -- writes ------------------------------------------------------------------------

    def create_target_group(self, spec: Mapping[str, Any]) -> str:
        (group,) = self.call("create_target_group", **spec)["TargetGroups"]
        return str(group["TargetGroupArn"])

    def register_targets(self, arn: str, targets: Sequence[Mapping[str, Any]]) -> None:
        self.call("register_targets", TargetGroupArn=arn, Targets=list(targets))

    def delete_target_group(self, arn: str) -> None:
        self.call("delete_target_group", TargetGroupArn=arn)

    def create_rule(
        self,
        listener_arn: str,
        priority: int,
        conditions: list[dict[str, Any]],
        actions: list[dict[str, Any]],
        tags: Mapping[str, str],
    ) -> str:
        (rule,) = self.call(
            "create_rule",
            ListenerArn=listener_arn,
            Priority=priority,
            Conditions=conditions,
            Actions=actions,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["Rules"]
        return str(rule["RuleArn"])

    def modify_rule(
        self, arn: str, conditions: list[dict[str, Any]], actions: list[dict[str, Any]]
    ) -> None:
        self.call("modify_rule", RuleArn=arn, Conditions=conditions, Actions=actions)

    def delete_rule(self, arn: str) -> None:
        self.call("delete_rule", RuleArn=arn)

    def set_priorities(self, priorities: Sequence[tuple[str, int]]) -> None:
        self.call(
            "set_rule_priorities",
            RulePriorities=[{"RuleArn": arn, "Priority": p} for arn, p in priorities],
        )

    def modify_default(self, listener_arn: str, actions: list[dict[str, Any]]) -> None:
        self.call("modify_listener", ListenerArn=listener_arn, DefaultActions=actions)
