"""The local AWS stand-ins: moto for the control plane, dynalite for DynamoDB, set-up
hooks that reach them through plain boto3 clients, and readiness only after set-up."""

from __future__ import annotations

import socket

import boto3
import httpx
import pytest

from facade import aws_local

needs_dynalite = pytest.mark.skipif(
    aws_local.dynalite_command() is None, reason="dynalite not installed (make bootstrap)"
)


def _tables(endpoint: str) -> list[str]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, **aws_local.CREDENTIALS)
    return list(client.list_tables()["TableNames"])


@needs_dynalite
def test_dynamodb_goes_to_dynalite_and_hooks_see_the_stand_ins() -> None:
    with aws_local.running(setup=["tests.facade.aws_hooks:make_table"]) as endpoints:
        assert endpoints.dynamodb != endpoints.aws
        assert _tables(endpoints.dynamodb) == ["hooked"]
        ready = httpx.get(endpoints.aws + aws_local.READY_PATH)
        assert ready.status_code == 200
        env = endpoints.environment()
        assert env["AWS_ENDPOINT_URL_DYNAMODB"] == endpoints.dynamodb
        assert env["AWS_ENDPOINT_URL"] == endpoints.aws
        elbv2 = boto3.client("elbv2", endpoint_url=endpoints.aws, **aws_local.CREDENTIALS)
        assert elbv2.describe_load_balancers()["LoadBalancers"] == []
        port = int(endpoints.dynamodb.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_without_dynalite_moto_serves_dynamodb_too() -> None:
    with aws_local.running(
        setup=["tests.facade.aws_hooks:make_table"], dynamodb_port=None
    ) as endpoints:
        assert endpoints.dynamodb == endpoints.aws
        assert _tables(endpoints.aws) == ["hooked"]


def test_a_failing_hook_stops_the_stand_ins() -> None:
    with (
        pytest.raises(RuntimeError, match="the hook failed"),
        aws_local.running(setup=["tests.facade.aws_hooks:fail"], dynamodb_port=None),
    ):
        pass


needs_fauxqs = pytest.mark.skipif(
    aws_local.fauxqs_command() is None, reason="fauxqs not installed (make bootstrap)"
)


@needs_fauxqs
def test_sqs_goes_to_fauxqs_with_fifo_queues() -> None:
    with aws_local.running(dynamodb_port=None) as endpoints:
        assert endpoints.sqs not in ("", endpoints.aws)
        assert endpoints.environment()["AWS_ENDPOINT_URL_SQS"] == endpoints.sqs
        sqs = boto3.client("sqs", endpoint_url=endpoints.sqs, **aws_local.CREDENTIALS)
        url = sqs.create_queue(QueueName="t.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        for n in range(3):
            sqs.send_message(
                QueueUrl=url, MessageBody=str(n), MessageGroupId="g", MessageDeduplicationId=str(n)
            )
        bodies: list[str] = []
        while len(bodies) < 3:
            answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in answer.get("Messages", []):
                bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert bodies == ["0", "1", "2"]
        port = int(endpoints.sqs.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
