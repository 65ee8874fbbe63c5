"""The SAM, ECS, alarms and IAM outputs: golden files, deterministic, cfn-lint clean with our
rules, the SAM template transforming with SAM's own translator; what AWS would refuse is
refused at render."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from ruamel.yaml import YAML
from samtranslator.translator.transform import transform

from facade.aws import alarms, apigw, cloudformation, ecs, iam, sam, stepfunctions
from facade.exceptions import ConfigError, RoutingFileError
from facade.rollout.engine import Phase
from facade.routing.loader import load_table, parse_table

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
STRANGLER = str(Path(sys.executable).with_name("strangler"))
LISTENER = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    "listener/app/shop/0123456789abcdef/fedcba9876543210"
)


def yaml_load(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRANGLER, *args], capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


@pytest.mark.parametrize("kind", ["sam", "ecs", "alarms"])
def test_the_sample_renders_the_golden_template_and_lints_clean(kind: str, tmp_path: Path) -> None:
    rendered = _cli("render", kind, "-f", "routing.yaml")
    assert rendered.returncode == 0, rendered.stderr
    golden = GOLDEN / f"{kind}.yaml"
    if os.environ.get("STRANGLER_UPDATE_GOLDEN"):
        golden.write_text(rendered.stdout)
    assert rendered.stdout == golden.read_text(), "regenerate with STRANGLER_UPDATE_GOLDEN=1"
    assert _cli("render", kind, "-f", "routing.yaml").stdout == rendered.stdout
    out = tmp_path / f"{kind}.json"
    written = _cli("render", kind, "-f", "routing.yaml", "--format", "json", "--out", str(out))
    assert written.returncode == 0, written.stderr
    linted = _cli("lint", str(out))
    assert linted.returncode == 0, linted.stdout + linted.stderr


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def test_the_sam_template_transforms_into_a_clean_cloudformation_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    document = sam.template(load_table(REPO / "routing.yaml"), "routing.yaml")
    packaged = copy.deepcopy(document)  # what `sam package` does: code to S3
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts/orders-lambda.zip"
    output = transform(packaged, {}, _NoManagedPolicies())
    resources: dict[str, Any] = output["Resources"]
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1
    (mapping,) = mappings
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["QueueOrdersToLambda", "Arn"]}
    aliases = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert [a["Properties"]["Name"] for a in aliases] == ["live"]
    queue = resources["QueueOrdersToLambda"]["Properties"]
    assert queue["FifoQueue"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    transformed = tmp_path / "transformed.json"
    transformed.write_text(json.dumps(output, default=str))
    linted = _cli("lint", str(transformed))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def _table(sync: str) -> str:
    return (
        "version: 1\nbackends:\n"
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:9'}\n"
        "  fn: {kind: lambda, handler: 'pkg.mod:handler', aws: {function: f, timeout: 60}}\n"
        "routes: []\ndefault: monolith\n"
        f"sync:\n  in:\n    from: monolith\n    to: fn\n    queue: q.fifo\n{sync}"
    )


def test_a_consumer_that_may_outlive_its_queues_visibility_timeout_is_refused() -> None:
    table = parse_table(_table("    consumer: 'pkg.sync:handler'\n"), "t.yaml")
    with pytest.raises(ConfigError, match=r"sync\.in: visibility_timeout 30 s is shorter .* 60 s"):
        sam.template(table, "t.yaml")
    longer = _table("    consumer: 'pkg.sync:handler'\n    visibility_timeout: 60\n")
    assert "ConsumerIn" in sam.template(parse_table(longer, "t.yaml"), "t.yaml")["Resources"]


def test_a_lambda_target_without_a_consumer_is_refused() -> None:
    table = parse_table(_table("    visibility_timeout: 60\n"), "t.yaml")
    with pytest.raises(ConfigError, match="consumer: module:function"):
        sam.template(table, "t.yaml")


def test_the_iam_policy_names_the_listener_its_rules_and_our_target_groups() -> None:
    rendered = _cli("render", "iam", "--listener", LISTENER, "--prefix", "shop")
    assert rendered.returncode == 0, rendered.stderr
    statements = {s["Sid"]: s for s in json.loads(rendered.stdout)["Statement"]}
    assert statements["ReadTheListener"]["Resource"] == "*"
    assert statements["ChangeTheListenerAndItsRules"]["Resource"] == [
        LISTENER,
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
        "listener-rule/app/shop/0123456789abcdef/fedcba9876543210/*",
    ]
    assert statements["ManageStranglersTargetGroups"]["Resource"] == (
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-*/*"
    )
    with pytest.raises(ConfigError, match="not an ALB listener ARN"):
        iam.policy("arn:aws:s3:::bucket", "shop")


def test_ecs_services_register_in_their_target_group_and_roll_back_failed_deployments() -> None:
    document = ecs.template(load_table(REPO / "routing.yaml"), "routing.yaml")
    service = document["Resources"]["ServiceCatalog"]["Properties"]
    assert service["LoadBalancers"] == [
        {"ContainerName": "catalog", "ContainerPort": 8000,
         "TargetGroupArn": {"Ref": "TargetGroupCatalogArn"}}
    ]  # fmt: skip
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True, "Rollback": True
    }  # fmt: skip
    (container,) = document["Resources"]["TaskDefinitionCatalog"]["Properties"][
        "ContainerDefinitions"
    ]
    assert "http://127.0.0.1:8000/healthz" in container["HealthCheck"]["Command"][1]
    assert cloudformation.dump(document, "json") == cloudformation.dump(
        ecs.template(load_table(REPO / "routing.yaml"), "routing.yaml"), "json"
    )


EDGE = """\
version: 1
backends:
  monolith: {kind: monolith, url: 'http://127.0.0.1:9', aws: {instances: [i-0123456789abcdef0]}}
  orders: {kind: lambda, handler: 'pkg.api:handler', aws: {function: shop-orders, alias: live}}
routes:
  - {name: special, match: {paths: ['/api/orders/export']}, targets: {monolith: 100}}
  - {name: orders, match: {paths: ['/api/orders', '/api/orders/*']}, targets: {orders: 100}}
  - {name: carts, match: {paths: ['/api/carts/*']}, targets: {orders: 100}}
  - name: beta
    match: {paths: ['/api/beta/*'], headers: {X-Beta: ['on']}}
    targets: {orders: 100}
  - {name: account, match: {paths: ['/api/account/*'], methods: [GET, PATCH]}, auth: true,
     targets: {monolith: 50, orders: 50}}
default: monolith
api:
  name: shop
  cors: {allow_origins: ['https://shop.example.com'], allow_methods: [GET], max_age: 60}
  throttling: {burst: 50, rate: 20}
  jwt:
    issuer: https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123
    audience: [client-1]
"""


def test_api_routes_go_direct_to_a_lambda_only_where_api_gateway_matches_as_the_alb() -> None:
    routes = {r.key: r for r in apigw.api_routes(parse_table(EDGE, "edge.yaml"))}
    # orders could be shadowed by the earlier, more specific 'special': it stays on the ALB
    assert "ANY /api/orders/{proxy+}" not in routes
    assert routes["ANY /api/carts/{proxy+}"].target == "orders"  # direct, no overlap
    assert not any("/api/beta" in key for key in routes)  # header conditions: the ALB's job
    assert {k: (r.target, r.auth) for k, r in routes.items() if "account" in k} == {
        "GET /api/account/{proxy+}": ("alb", True),
        "PATCH /api/account/{proxy+}": ("alb", True),
    }


def test_the_openapi_document_validates_and_the_template_lints_clean(tmp_path: Path) -> None:
    routing = tmp_path / "edge.yaml"
    routing.write_text(EDGE)
    document = apigw.openapi(load_table(routing), region="eu-west-1", account="123456789012")
    validate(document)
    carts = document["paths"]["/api/carts/{proxy+}"]["x-amazon-apigateway-any-method"]
    assert carts["x-amazon-apigateway-integration"]["uri"] == (
        "arn:aws:lambda:eu-west-1:123456789012:function:shop-orders:live"
    )
    account = document["paths"]["/api/account/{proxy+}"]["get"]
    assert account["security"] == [{"jwt": []}]
    assert account["x-amazon-apigateway-integration"]["connectionType"] == "VPC_LINK"
    out = tmp_path / "api.json"
    written = _cli("render", "apigw", "--cloudformation", "-f", str(routing), "--format", "json",
                   "--out", str(out))  # fmt: skip
    assert written.returncode == 0, written.stderr
    template = json.loads(out.read_text())
    stage = template["Resources"]["Stage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 50, "ThrottlingRateLimit": 20}
    routes = [r["Properties"] for r in template["Resources"].values()
              if r["Type"] == "AWS::ApiGatewayV2::Route"]  # fmt: skip
    guarded = [r for r in routes if "AuthorizationType" in r]
    assert sorted(r["RouteKey"] for r in guarded) == [
        "GET /api/account/{proxy+}", "PATCH /api/account/{proxy+}"
    ]  # fmt: skip
    linted = _cli("lint", str(out))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_sample_api_renders_its_golden_files(tmp_path: Path) -> None:
    for args, name in ((["render", "apigw"], "apigw-openapi.yaml"),
                       (["render", "apigw", "--cloudformation"], "apigw.yaml")):  # fmt: skip
        rendered = _cli(*args, "-f", "routing.yaml")
        assert rendered.returncode == 0, rendered.stderr
        if os.environ.get("STRANGLER_UPDATE_GOLDEN"):
            (GOLDEN / name).write_text(rendered.stdout)
        assert rendered.stdout == (GOLDEN / name).read_text()
    validate(yaml_load((GOLDEN / "apigw-openapi.yaml").read_text()))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "paths: ['/api/account/*'], methods",
            "paths: ['/api/account/*'], headers: {X-A: ['1']}, methods",
        ),
        ("paths: ['/api/account/*']", "paths: ['/api/*/account']"),
    ],
)
def test_an_auth_route_api_gateway_cannot_guard_exactly_is_refused(
    change: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"edge\.yaml:\d+: routes\[account\]: auth"):
        apigw.api_routes(parse_table(EDGE.replace(change, message), "edge.yaml"))


def test_auth_without_a_jwt_authorizer_is_a_routing_file_error() -> None:
    with pytest.raises(RoutingFileError, match=r"routes\[account\]\.auth: needs api\.jwt"):
        parse_table(EDGE.split("  jwt:")[0], "edge.yaml")


def test_the_api_of_a_50_route_table_lints_clean(tmp_path: Path) -> None:
    routes = "".join(
        f"  - {{name: r{i}, match: {{paths: ['/api/r{i}/*']}}, "
        f"targets: {['{fn: 100}', '{monolith: 100}', '{monolith: 50, fn: 50}'][i % 3]}"
        f"{', auth: true' if i % 4 == 0 else ''}}}\n"
        for i in range(50)
    )
    routing = tmp_path / "big.yaml"
    routing.write_text(
        "version: 1\nbackends:\n"
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:9'}\n"
        "  fn: {kind: lambda, handler: 'pkg.api:handler', aws: {function: shop-fn, alias: live}}\n"
        f"routes:\n{routes}default: monolith\n"
        "api: {jwt: {issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_X', "
        "audience: [c]}}\n"
    )
    table = load_table(routing)
    direct = [r for r in apigw.api_routes(table) if r.target == "fn"]
    assert len(direct) == 17  # every route fully on the function
    validate(apigw.openapi(table))
    out = tmp_path / "api.yaml"
    assert (
        _cli(
            "render", "apigw", "--cloudformation", "-f", str(routing), "--out", str(out)
        ).returncode
        == 0
    )
    linted = _cli("lint", str(out))
    assert linted.returncode == 0, linted.stdout + linted.stderr


ALARMED = """\
version: 1
backends:
  monolith: {kind: monolith, url: 'http://127.0.0.1:9', aws: {instances: [i-0123456789abcdef0]}}
  orders: {kind: lambda, handler: 'pkg.api:handler', aws: {function: shop-orders, alias: live}}
  legacy:
    kind: url
    url: http://127.0.0.1:7
    aws:
      target_group_arn: >-
        arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/legacy/0123456789abcdef
routes:
  - name: orders
    match: {paths: ['/api/orders/*']}
    targets: {monolith: 90, orders: 10}
    rollout:
      to: orders
      steps: [10, 100]
      analysis: {critical: {errors: 2, min_requests: 50}, latency: {quantile: 0.99}}
  - {name: carts, match: {paths: ['/api/carts/*']}, targets: {orders: 100}}
  - {name: old, match: {paths: ['/old/*']}, targets: {legacy: 100}}
  - name: internal
    match: {paths: ['/internal/*']}
    fixed_response: {status: 404}
default: monolith
"""


def test_each_backend_is_alarmed_once_with_the_strictest_guard_of_its_routes() -> None:
    table = parse_table(ALARMED, "alarmed.yaml")
    given = alarms.Thresholds(errors=5, min_requests=100, latency=1.5, quantile=0.95)
    resources = alarms.template(table, "alarmed.yaml", given)["Resources"]
    errors = resources["ErrorsOrders"]["Properties"]
    assert errors["Threshold"] == 2  # the orders rollout's critical guard beats --error-rate
    (rate,) = [m for m in errors["Metrics"] if m["ReturnData"]]
    assert rate["Expression"] == "IF(requests >= 50, 100 * (FILL(errors0, 0)) / requests, 0)"
    latency = resources["LatencyOrders"]["Properties"]
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", 1500)  # ms
    assert latency["Dimensions"] == [
        {"Name": "FunctionName", "Value": "shop-orders"},
        {"Name": "Resource", "Value": "shop-orders:live"},
    ]
    # the monolith serves the orders route and the default: the rollout's guard is stricter
    assert resources["ErrorsMonolith"]["Properties"]["Threshold"] == 2
    legacy = resources["LatencyLegacy"]["Properties"]["Dimensions"]
    assert legacy[0] == {"Name": "TargetGroup", "Value": "targetgroup/legacy/0123456789abcdef"}
    assert resources["ErrorsLegacy"]["Properties"]["Threshold"] == 5
    (rate,) = [m for m in resources["ErrorsLegacy"]["Properties"]["Metrics"] if m["ReturnData"]]
    assert rate["Expression"].startswith("IF(requests >= 100, ")  # no plan: the options
    assert resources["RouteOrders"]["Properties"]["AlarmRule"] == {
        "Fn::Sub": 'ALARM("${ErrorsMonolith}") OR ALARM("${LatencyMonolith}") OR '
        'ALARM("${ErrorsOrders}") OR ALARM("${LatencyOrders}")'
    }
    composite = sorted(k for k, r in resources.items() if r["Type"].endswith("CompositeAlarm"))
    assert composite == ["RouteCarts", "RouteDefault", "RouteOld", "RouteOrders"]  # no deny rule
    assert len(resources) == 3 * 2 + 4


def test_a_target_group_arn_that_is_not_one_is_refused_naming_the_backend() -> None:
    bad = ALARMED.replace("targetgroup/legacy/0123456789abcdef", "loadbalancer/app/x/1")
    with pytest.raises(ConfigError, match=r"backends\.legacy\.aws\.target_group_arn: .*not a"):
        alarms.template(parse_table(bad, "alarmed.yaml"), "alarmed.yaml")


ROLLED = """\
version: 1
backends:
  monolith: {kind: monolith, url: 'http://127.0.0.1:9', aws: {instances: [i-0123456789abcdef0]}}
  orders: {kind: lambda, handler: 'pkg.api:handler', aws: {function: shop-orders, alias: live}}
routes:
  - name: orders
    match: {paths: ['/api/orders/*']}
    targets: {monolith: 99, orders: 1}
    rollout:
      to: orders
      steps: [1, 10, 50, 100]
      step: {min_time: 300, min_sample: 200, max_wait: 1800}
      bake: 600
      interval: 20
      analysis: {provider: cloudwatch}
  - {name: carts, match: {paths: ['/api/carts/*']}, targets: {orders: 100}}
default: monolith
"""


def _targets(state: dict[str, Any]) -> set[str]:
    found = {state[k] for k in ("Next", "Default") if k in state}
    found |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
    return found


def test_the_rollout_state_machine_renders_its_golden_file_and_lints_clean(tmp_path: Path) -> None:
    routing = tmp_path / "rolled.yaml"
    routing.write_text(ROLLED)
    rendered = _cli("render", "rollout", "orders", "-f", str(routing))
    assert rendered.returncode == 0, rendered.stderr
    golden = GOLDEN / "rollout.yaml"
    if os.environ.get("STRANGLER_UPDATE_GOLDEN"):
        golden.write_text(rendered.stdout)
    assert rendered.stdout == golden.read_text(), "regenerate with STRANGLER_UPDATE_GOLDEN=1"
    out = tmp_path / "rollout.json"
    written = _cli("render", "rollout", "orders", "-f", str(routing), "--format", "json",
                   "--out", str(out))  # fmt: skip
    assert written.returncode == 0, written.stderr
    linted = _cli("lint", str(out))
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_loop_chooses_on_the_tasks_phase_and_every_transition_lands_on_a_state() -> None:
    document = stepfunctions.template(parse_table(ROLLED, "rolled.yaml"), "orders", "rolled.yaml")
    resources = document["Resources"]
    machine = resources["StateMachine"]["Properties"]["Definition"]
    states = dict(machine["States"])
    waiting, ending = states["Paused"]["Fn::If"][1:]  # with a pause topic, and without
    for paused in (waiting, ending):
        variant = {**states, "Paused": paused}
        targets = {t for s in variant.values() for t in _targets(s)}
        assert targets <= set(variant), targets - set(variant)
        assert set(variant) - targets == {"Start"}  # every other state is reached
    choices = {c["StringEquals"]: c["Next"] for c in states["Decide"]["Choices"]}
    assert choices == {
        str(Phase.PROMOTED): "Promoted",
        str(Phase.ROLLED_BACK): "RolledBack",
        str(Phase.PAUSED): "Paused",
    }
    assert {c["Variable"] for c in states["Decide"]["Choices"]} == {"$.state.phase"}
    assert states["Decide"]["Default"] == "Wait"
    assert states["Wait"] == {"Type": "Wait", "Seconds": 60, "Next": "Analyse"}  # not 20 s
    assert states["Start"]["Parameters"] == {"route": "orders", "request.$": "$"}
    assert (waiting["ResultPath"], waiting["Next"]) == ("$.request", "Analyse")
    function = resources["TaskFunction"]["Properties"]
    assert function["Handler"] == "facade.rollout.task.handler"
    role = resources["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    writes = [s for s in role if s["Resource"] != "*"]
    assert [a for s in writes for a in s["Action"]] == ["elasticloadbalancing:ModifyRule"]
    assert all(a.startswith(("elasticloadbalancing:Describe", "cloudwatch:GetMetricData"))
               for s in role if s["Resource"] == "*" for a in s["Action"])  # fmt: skip


@pytest.mark.parametrize(
    ("route", "change", "message"),
    [
        ("carts", "", r"routes\[carts\] has no rollout block"),
        ("nothing", "", "no route named 'nothing'"),
        ("orders", "      analysis: {provider: cloudwatch}\n",
         r"on_inconclusive: hold may wait forever"),
        ("orders", "max_wait: 1800", r"up to 3010 analyses"),
    ],
)  # fmt: skip
def test_a_rollout_the_state_machine_cannot_run_is_refused(
    route: str, change: str, message: str
) -> None:
    text = ROLLED
    if "analysis" in change:
        text = text.replace(change, change + "      on_inconclusive: hold\n")
    elif change:
        text = text.replace(change, "max_wait: 45000")
    with pytest.raises(ConfigError, match=message):
        stepfunctions.template(parse_table(text, "rolled.yaml"), route, "rolled.yaml")
