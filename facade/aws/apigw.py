"""``strangler render apigw``: the public edge as an API Gateway HTTP API.

The ALB behind it applies routing.yaml's rules, so the API needs few routes of its own:
``$default`` sends every request through a VPC link to the ALB listener (HTTP_PROXY), and
only two kinds of route get an API route:

* a route **fully cut over to one Lambda backend** is invoked directly (AWS_PROXY to the
  function's alias, payload 2.0), skipping the ALB hop — when API Gateway can match it
  exactly as the ALB does: no header conditions, path patterns that are exact or end in
  ``/*`` (``{proxy+}``), and no earlier route whose paths could overlap (API Gateway
  picks the most specific route, the ALB the first by priority). Otherwise it stays on
  the ALB, which decides correctly;
* a route with ``auth: true`` gets the JWT authorizer of ``api.jwt`` — so its paths must
  be expressible, and header conditions are refused: API Gateway matches by method and
  path only, and a guard that applied to other requests than the route's would be wrong.

CORS and throttling (``api.cors``, ``api.throttling``) are the API's and its stage's.
Two outputs from the same routes: the OpenAPI 3 document with
``x-amazon-apigateway-integration`` (``--listener``, ``--vpc-link`` and ``--region``/
``--account`` fill its ARNs), and with ``--cloudformation`` the template that deploys it:
API, ``$default`` stage, VPC link, integrations, routes, authorizer, invoke permissions
— and, for each Lambda backend whose versions are canaried by a stage, the REST API whose
stage canary splits them (``facade.aws.version_canary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facade.aws.cloudformation import function_arn, logical_id, qualified_function
from facade.aws.version_canary import stage_resources
from facade.exceptions import ConfigError
from facade.routing.model import Backend, BackendKind, Route, RoutingTable

ALB = "alb"


@dataclass(frozen=True)
class ApiRoute:
    key: str  # "ANY /api/orders/{proxy+}"
    target: str  # ALB, or the Lambda backend invoked directly
    auth: bool
    route: str  # the routing.yaml route it comes from


def _api_path(pattern: str) -> str | None:
    """The API Gateway path that matches what the ALB pattern matches, if there is one."""
    if "*" not in pattern and "?" not in pattern:
        return pattern
    head = pattern[:-2]
    if pattern.endswith("/*") and "*" not in head and "?" not in head:
        return head + "/{proxy+}"
    return None


def _literal(pattern: str) -> str:
    return pattern.split("*")[0].split("?")[0]


def _may_overlap(a: Route, b: Route) -> bool:
    """Conservatively: could a request match a path of both routes?"""
    for x in a.match.paths or ("*",):
        for y in b.match.paths or ("*",):
            lx, ly = _literal(x), _literal(y)
            if lx.startswith(ly) or ly.startswith(lx):
                return True
    return False


def _sole_lambda(table: RoutingTable, route: Route) -> Backend | None:
    serving = [t for t in route.targets if t.share]
    if len(serving) != 1:
        return None
    backend = table.backends[serving[0].backend]
    return backend if backend.kind is BackendKind.LAMBDA else None


def _where(table: RoutingTable, route: Route) -> str:
    return f"{table.source}:{route.line}: routes[{route.name}]"


def api_routes(table: RoutingTable) -> tuple[ApiRoute, ...]:
    found: dict[str, ApiRoute] = {}
    for index, route in enumerate(table.routes):
        paths = [_api_path(p) for p in route.match.paths]
        expressible = bool(paths) and all(p is not None for p in paths)
        if route.auth and route.match.headers:
            raise ConfigError(
                f"{_where(table, route)}: auth on a route with header conditions cannot be "
                "expressed on API Gateway (it matches routes by method and path only)"
            )
        if route.auth and not expressible:
            raise ConfigError(
                f"{_where(table, route)}: auth needs paths API Gateway can match exactly: "
                "exact paths, or ending in '/*' with no other wildcard"
            )
        backend = _sole_lambda(table, route)
        direct = (
            backend is not None
            and expressible
            and not route.match.headers
            and not any(_may_overlap(route, earlier) for earlier in table.routes[:index])
        )
        if not direct and not route.auth:
            continue  # $default: the ALB decides
        target = backend.name if direct and backend is not None else ALB
        for method in route.match.methods or ("ANY",):
            for path in paths:
                key = f"{method} {path}"
                if key in found:
                    raise ConfigError(
                        f"{_where(table, route)}: API route {key!r} already comes from route "
                        f"{found[key].route}: give the routes distinct paths"
                    )
                found[key] = ApiRoute(key, target, route.auth, route.name)
    return tuple(found.values())


def openapi(
    table: RoutingTable,
    *,
    listener: str = "${ListenerArn}",
    vpc_link: str = "${VpcLinkId}",
    region: str = "${AWS::Region}",
    account: str = "${AWS::AccountId}",
) -> dict[str, Any]:
    """The OpenAPI 3 document of the HTTP API (import it, or read it in review)."""
    alb_integration = {
        "type": "http_proxy",
        "httpMethod": "ANY",
        "uri": listener,
        "connectionType": "VPC_LINK",
        "connectionId": vpc_link,
        "payloadFormatVersion": "1.0",
    }
    paths: dict[str, dict[str, Any]] = {}
    for api_route in api_routes(table):
        method, path = api_route.key.split(" ", 1)
        if api_route.target == ALB:
            integration = alb_integration
        else:
            integration = {
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": f"arn:aws:lambda:{region}:{account}:function:"
                f"{qualified_function(table.backends[api_route.target].aws)}",
                "payloadFormatVersion": "2.0",
            }
        operation: dict[str, Any] = {
            "x-amazon-apigateway-integration": integration,
            "responses": {"default": {"description": "the backend's response"}},
        }
        if path.endswith("{proxy+}"):
            operation["parameters"] = [
                {"name": "proxy+", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if api_route.auth:
            operation["security"] = [{"jwt": []}]
        verb = "x-amazon-apigateway-any-method" if method == "ANY" else method.lower()
        paths.setdefault(path, {})[verb] = operation
    paths["/$default"] = {
        "x-amazon-apigateway-any-method": {
            "x-amazon-apigateway-integration": alb_integration,
            "responses": {"default": {"description": "the ALB's response"}},
        }
    }
    document: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": table.api.name, "version": "1.0"},
        "paths": paths,
    }
    if table.api.jwt is not None:
        document["components"] = {
            "securitySchemes": {
                "jwt": {
                    "type": "oauth2",
                    "flows": {},
                    "x-amazon-apigateway-authorizer": {
                        "type": "jwt",
                        "identitySource": "$request.header.Authorization",
                        "jwtConfiguration": {
                            "issuer": table.api.jwt.issuer,
                            "audience": list(table.api.jwt.audience),
                        },
                    },
                }
            }
        }
    if table.api.cors is not None:
        cors = table.api.cors
        document["x-amazon-apigateway-cors"] = {
            "allowOrigins": list(cors.allow_origins),
            "allowMethods": list(cors.allow_methods),
            "allowHeaders": list(cors.allow_headers),
            "maxAge": cors.max_age,
            "allowCredentials": cors.allow_credentials,
        }
    return document


def _cors(table: RoutingTable) -> dict[str, Any] | None:
    cors = table.api.cors
    if cors is None:
        return None
    return {
        "AllowOrigins": list(cors.allow_origins),
        "AllowMethods": list(cors.allow_methods),
        "AllowHeaders": list(cors.allow_headers),
        "MaxAge": cors.max_age,
        "AllowCredentials": cors.allow_credentials,
    }


def template(table: RoutingTable, source: str) -> dict[str, Any]:
    """CloudFormation for the HTTP API: the same routes as ``openapi``."""
    routes = api_routes(table)
    api: dict[str, Any] = {"Name": table.api.name, "ProtocolType": "HTTP"}
    if (cors := _cors(table)) is not None:
        api["CorsConfiguration"] = cors
    resources: dict[str, Any] = {
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": api},
        "VpcLink": {
            "Type": "AWS::ApiGatewayV2::VpcLink",
            "Properties": {
                "Name": f"{table.api.name}-alb",
                "SubnetIds": {"Ref": "VpcLinkSubnets"},
                "SecurityGroupIds": {"Ref": "VpcLinkSecurityGroups"},
            },
        },
        "AlbIntegration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "IntegrationType": "HTTP_PROXY",
                "IntegrationMethod": "ANY",
                "IntegrationUri": {"Ref": "ListenerArn"},
                "ConnectionType": "VPC_LINK",
                "ConnectionId": {"Ref": "VpcLink"},
                "PayloadFormatVersion": "1.0",
            },
        },
        "DefaultRoute": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "RouteKey": "$default",
                "Target": {"Fn::Join": ["/", ["integrations", {"Ref": "AlbIntegration"}]]},
            },
        },
    }
    if table.api.jwt is not None:
        resources["JwtAuthorizer"] = {
            "Type": "AWS::ApiGatewayV2::Authorizer",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "Name": "jwt",
                "AuthorizerType": "JWT",
                "IdentitySource": ["$request.header.Authorization"],
                "JwtConfiguration": {
                    "Issuer": table.api.jwt.issuer,
                    "Audience": list(table.api.jwt.audience),
                },
            },
        }
    for target in sorted({r.target for r in routes} - {ALB}):
        arn = function_arn(table.backends[target].aws)
        resources[logical_id("Integration", target)] = {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Api"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": arn,
                "PayloadFormatVersion": "2.0",
            },
        }
        resources[logical_id("InvokePermission", target)] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": arn,
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                    "${AWS::AccountId}:${Api}/*"
                },
            },
        }
    for number, api_route in enumerate(routes, 1):
        integration = (
            "AlbIntegration"
            if api_route.target == ALB
            else logical_id("Integration", api_route.target)
        )
        properties: dict[str, Any] = {
            "ApiId": {"Ref": "Api"},
            "RouteKey": api_route.key,
            "Target": {"Fn::Join": ["/", ["integrations", {"Ref": integration}]]},
        }
        if api_route.auth:
            properties.update(AuthorizationType="JWT", AuthorizerId={"Ref": "JwtAuthorizer"})
        resources[logical_id("Route", f"{api_route.route} {number}")] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": properties,
        }
    stage: dict[str, Any] = {"ApiId": {"Ref": "Api"}, "StageName": "$default", "AutoDeploy": True}
    limits = {}
    if table.api.burst is not None:
        limits["ThrottlingBurstLimit"] = table.api.burst
    if table.api.rate is not None:
        limits["ThrottlingRateLimit"] = table.api.rate
    if limits:
        stage["DefaultRouteSettings"] = limits
    resources["Stage"] = {"Type": "AWS::ApiGatewayV2::Stage", "Properties": stage}
    canaries, canary_outputs = stage_resources(table)  # REST API stages: v2 has no canary
    resources.update(canaries)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"strangler: the HTTP API in front of the ALB, from {source}",
        "Parameters": {
            "ListenerArn": {"Type": "String", "Description": "The ALB listener (render alb)"},
            "VpcLinkSubnets": {"Type": "List<AWS::EC2::Subnet::Id>"},
            "VpcLinkSecurityGroups": {"Type": "List<AWS::EC2::SecurityGroup::Id>"},
        },
        "Resources": resources,
        "Outputs": {
            "ApiEndpoint": {"Value": {"Fn::GetAtt": ["Api", "ApiEndpoint"]}},
            **canary_outputs,
        },
    }
