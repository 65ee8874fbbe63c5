"""A load balancer in the AWS stand-in (moto's ELBv2 and CloudWatch), for the tests of
the CloudWatch provider and the Step Functions task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from facade import aws_local

ROUTING = """\
version: 1
backends:
  monolith:
    kind: monolith
    url: http://127.0.0.1:9
    aws: {{instances: [i-0a1b2c3d4e5f60718], port: 8000, vpc_id: {vpc}}}
  orders:
    kind: lambda
    handler: extracted.orders.handler:lambda_handler
    aws: {{function: {function}, alias: live, target_group_arn: '{lambda_group}'}}
routes:
  - name: orders
    match: {{paths: ['/api/orders', '/api/orders/*']}}
    targets: {{monolith: 99, orders: 1}}
    stickiness: {{duration: 3600}}
    rollout:
      to: orders
      steps: [1, 10, 50, 100]
      step: {{min_time: 60, min_sample: 50, max_wait: 600}}
      bake: 120
      interval: 30
      analysis: {{provider: cloudwatch, latency: null}}
default: monolith
local:
  aws: {{endpoint: '{endpoint}'}}
"""


@dataclass
class Balancer:
    """An ALB with a listener in the stand-in, and a routing file naming it."""

    elbv2: Any  # boto3 clients of the stand-in
    cloudwatch: Any
    load_balancer: str  # ARN
    listener: str
    lambda_group: str  # the orders function's target group (given by ARN in the file)
    function: str
    routing: Path
    prefix: str

    def group_arn(self, name: str) -> str:
        (group,) = self.elbv2.describe_target_groups(Names=[name])["TargetGroups"]
        return str(group["TargetGroupArn"])

    def put(self, namespace: str, metric: str, dimensions: dict[str, str], value: float,
            at: datetime, unit: str = "Count") -> None:  # fmt: skip
        """A data point as the load balancer or Lambda would publish it."""
        self.cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[{
                "MetricName": metric, "Timestamp": at, "Value": value, "Unit": unit,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            }],
        )  # fmt: skip


@contextmanager
def balancer(endpoints: aws_local.Endpoints, folder: Path) -> Iterator[Balancer]:
    """Removed afterwards: the stand-in's state is shared by every test of the session."""
    kw: dict[str, Any] = {"endpoint_url": endpoints.aws, **aws_local.CREDENTIALS}
    ec2, elbv2 = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
    tag = uuid.uuid4().hex[:6]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    lb = elbv2.create_load_balancer(Name=f"shop-{tag}", Subnets=subnets)["LoadBalancers"][0]
    placeholder = elbv2.create_target_group(Name=f"hold-{tag}", Protocol="HTTP", Port=80, VpcId=vpc)
    lambda_group = elbv2.create_target_group(Name=f"fn-{tag}", TargetType="lambda")
    lambda_arn = lambda_group["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward",
                         "TargetGroupArn": placeholder["TargetGroups"][0]["TargetGroupArn"]}],
    )["Listeners"][0]["ListenerArn"]  # fmt: skip
    routing = folder / "routing.yaml"
    function = f"shop-orders-{tag}"
    routing.write_text(
        ROUTING.format(vpc=vpc, lambda_group=lambda_arn, endpoint=endpoints.aws, function=function)
    )
    try:
        yield Balancer(
            elbv2, boto3.client("cloudwatch", **kw), lb["LoadBalancerArn"], listener,
            lambda_arn, function, routing, f"t{tag}",
        )  # fmt: skip
    finally:
        elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        for group in elbv2.describe_target_groups()["TargetGroups"]:
            name = group["TargetGroupName"]
            if name.endswith(tag) or name.startswith(f"t{tag}-"):
                elbv2.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)
