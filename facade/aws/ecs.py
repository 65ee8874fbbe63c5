"""``strangler render ecs``: each ECS backend as a Fargate task definition and service.

Per backend: the task definition (``aws.image`` or an ``Image…`` parameter,
``aws.cpu``/``aws.memory``, the container port, ``aws.environment``, a container health
check on ``aws.health_check`` made with the image's own Python — slim images carry no
curl — and logs to a CloudWatch log group), and the service in ``aws.cluster`` named
``aws.service``, registered in the backend's ALB target group (a ``TargetGroup…Arn``
parameter: the ``strangler render alb`` stack's output), rolling back by itself when a
deployment fails (circuit breaker). One task execution role serves them all.

When routes are shadowed, the facade itself is one more service (``facade``): ALB cannot
mirror requests, so in production the copies are made where the facade runs. Its task
runs ``strangler serve`` on the same routing.yaml (baked into the ``ImageFacade`` image,
at ``/app/routing.yaml``) with one worker per vCPU, listens on ``facade.listen``'s port
on every interface, and registers in a ``TargetGroupFacadeArn`` target group — the one
the ALB rules of the shadowed routes forward to while they are shadowed. Its health
check is the facade's own (``/__facade/health`` on the admin listener, inside the task).
"""

from __future__ import annotations

from typing import Any

from facade.aws.cloudformation import aws_int, logical_id
from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind, RoutingTable

LOG_RETENTION_DAYS = 30


def _health_command(port: int, path: str) -> list[str]:
    probe = (
        "import sys,urllib.request;"
        f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{port}{path}',timeout=4)"
        ".status<400 else 1)"
    )
    return ["CMD-SHELL", f'python -c "{probe}" || exit 1']


def _resources(backend: Backend, parameters: dict[str, Any]) -> dict[str, Any]:
    aws = backend.aws
    name = backend.name
    port = aws_int(backend, "container_port", 8000)
    image: Any = aws.get("image")
    if not image:
        image_param = logical_id("Image", name)
        parameters[image_param] = {"Type": "String", "Description": f"Container image of {name}"}
        image = {"Ref": image_param}
    tg_param = logical_id("TargetGroup", name) + "Arn"
    parameters[tg_param] = {
        "Type": "String",
        "Description": f"The ALB target group of {name} (output of the render alb stack)",
    }
    log_id, task_id = logical_id("LogGroup", name), logical_id("TaskDefinition", name)
    environment = aws.get("environment")
    container: dict[str, Any] = {
        "Name": name,
        "Image": image,
        "Essential": True,
        "PortMappings": [{"ContainerPort": port, "Protocol": "tcp"}],
        "HealthCheck": {
            "Command": _health_command(port, str(aws.get("health_check", "/"))),
            "Interval": 15,
            "Timeout": 5,
            "Retries": 3,
            "StartPeriod": 30,
        },
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": {"Ref": log_id},
                "awslogs-region": {"Ref": "AWS::Region"},
                "awslogs-stream-prefix": name,
            },
        },
        "StopTimeout": 30,
    }
    if isinstance(environment, dict) and environment:
        container["Environment"] = [
            {"Name": str(k), "Value": str(v)} for k, v in sorted(environment.items())
        ]
    return {
        log_id: {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": f"/strangler/{name}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        task_id: {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": str(aws.get("service", name)),
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": str(aws_int(backend, "cpu", 256)),
                "Memory": str(aws_int(backend, "memory", 512)),
                "ExecutionRoleArn": {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
                "ContainerDefinitions": [container],
            },
        },
        logical_id("Service", name): {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": str(aws["cluster"]),
                "ServiceName": str(aws["service"]),
                "LaunchType": "FARGATE",
                "DesiredCount": aws_int(backend, "desired_count", 2),
                "TaskDefinition": {"Ref": task_id},
                "HealthCheckGracePeriodSeconds": 60,
                "DeploymentConfiguration": {
                    "MinimumHealthyPercent": 100,
                    "MaximumPercent": 200,
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                },
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "AssignPublicIp": "DISABLED",
                        "Subnets": {"Ref": "Subnets"},
                        "SecurityGroups": {"Ref": "SecurityGroups"},
                    }
                },
                "LoadBalancers": [
                    {
                        "ContainerName": name,
                        "ContainerPort": port,
                        "TargetGroupArn": {"Ref": tg_param},
                    }
                ],
            },
        },
    }


FACADE_CPU, FACADE_MEMORY = 1024, 2048
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside its own task, behind the ALB  # one vCPU per worker; the shadow store on its disk


def _facade(
    table: RoutingTable, backends: list[Backend], parameters: dict[str, Any]
) -> dict[str, Any]:
    """The facade as a Fargate service, for the routes being shadowed."""
    settings = table.settings
    port = settings.listen_port
    workers = max(1, FACADE_CPU // 1024)
    parameters["ImageFacade"] = {
        "Type": "String",
        "Description": "Container image with strangler and this routing.yaml at /app/routing.yaml",
    }
    parameters["TargetGroupFacadeArn"] = {
        "Type": "String",
        "Description": "The target group the ALB rules of shadowed routes forward to",
    }
    parameters["FacadeCluster"] = {
        "Type": "String",
        "Default": str(backends[0].aws["cluster"]) if backends else "strangler",
        "Description": "The ECS cluster the facade runs in",
    }
    shadowed = ", ".join(r.name for r in table.routes if r.shadow is not None)
    return {
        "LogGroupFacade": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {
                "LogGroupName": "/strangler/facade",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        },
        "TaskDefinitionFacade": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": "strangler-facade",
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": str(FACADE_CPU),
                "Memory": str(FACADE_MEMORY),
                "ExecutionRoleArn": {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
                "ContainerDefinitions": [
                    {
                        "Name": "facade",
                        "Image": {"Ref": "ImageFacade"},
                        "Essential": True,
                        "WorkingDirectory": "/app",
                        "Command": [
                            *("strangler", "serve", "--routing", "/app/routing.yaml"),
                            *("--host", ALL_INTERFACES, "--port", str(port)),
                            *("--workers", str(workers)),
                        ],
                        "PortMappings": [{"ContainerPort": port, "Protocol": "tcp"}],
                        "HealthCheck": {
                            "Command": _health_command(settings.admin_port, "/__facade/health"),
                            "Interval": 15,
                            "Timeout": 5,
                            "Retries": 3,
                            "StartPeriod": 15,
                        },
                        "LogConfiguration": {
                            "LogDriver": "awslogs",
                            "Options": {
                                "awslogs-group": {"Ref": "LogGroupFacade"},
                                "awslogs-region": {"Ref": "AWS::Region"},
                                "awslogs-stream-prefix": "facade",
                            },
                        },
                        "StopTimeout": 30,
                    }
                ],
            },
        },
        "ServiceFacade": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": {"Ref": "FacadeCluster"},
                "ServiceName": "strangler-facade",
                "LaunchType": "FARGATE",
                "DesiredCount": 2,
                "TaskDefinition": {"Ref": "TaskDefinitionFacade"},
                "HealthCheckGracePeriodSeconds": 30,
                "EnableExecuteCommand": True,  # `strangler shadow report` inside a task
                "DeploymentConfiguration": {
                    "MinimumHealthyPercent": 100,
                    "MaximumPercent": 200,
                    "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                },
                "NetworkConfiguration": {
                    "AwsvpcConfiguration": {
                        "AssignPublicIp": "DISABLED",
                        "Subnets": {"Ref": "Subnets"},
                        "SecurityGroups": {"Ref": "SecurityGroups"},
                    }
                },
                "LoadBalancers": [
                    {
                        "ContainerName": "facade",
                        "ContainerPort": port,
                        "TargetGroupArn": {"Ref": "TargetGroupFacadeArn"},
                    }
                ],
                "Tags": [{"Key": "strangler:shadowed-routes", "Value": shadowed}],
            },
        },
    }


def template(table: RoutingTable, source: str) -> dict[str, Any]:
    backends = [b for b in table.backends.values() if b.kind is BackendKind.ECS]
    shadowed = any(r.shadow is not None for r in table.routes)
    if not backends and not shadowed:
        raise ConfigError(
            f"{table.source}: no ecs backend and no shadowed route: nothing to render"
        )
    parameters: dict[str, Any] = {
        "Subnets": {"Type": "List<AWS::EC2::Subnet::Id>", "Description": "Private subnets"},
        "SecurityGroups": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups that let the ALB reach the containers",
        },
    }
    resources: dict[str, Any] = {
        "TaskExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AmazonECSTaskExecutionRolePolicy"
                    }
                ],
            },
        }
    }
    for backend in backends:
        resources.update(_resources(backend, parameters))
    if shadowed:
        resources.update(_facade(table, backends, parameters))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler: ECS services from {source}",
        "Parameters": parameters,
        "Resources": resources,
    }
