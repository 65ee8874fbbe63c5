"""routing.yaml on an ALB: the rendered CloudFormation (golden, deterministic, cfn-lint
clean), what AWS cannot express refused at render, and plan/apply/drift against the
ELBv2 API of the local stand-in — idempotent, one rule per weight change, undone when a
call fails part-way."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from facade import aws_local
from facade.aws import alb, cloudformation, iam, live
from facade.aws.cli import observed_shares, weight_in_force
from facade.aws.client import ElbClient
from facade.aws.executor import AwsExecutor
from facade.aws.plan import CreateRule, ModifyDefault, ModifyRule, SetPriorities, make_plan
from facade.exceptions import ApplyFailed, AwsError, CheckFailed, ConfigError
from facade.proxy.choice import Chooser
from facade.routing.loader import load_table, parse_table
from facade.routing.model import shares_from_alb

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
STRANGLER = str(Path(sys.executable).with_name("strangler"))


def _render(path: Path, form: str = "yaml") -> str:
    table = load_table(path)
    return cloudformation.dump(cloudformation.template(alb.desired(table), path.name), form)


def _big_table(routes: int) -> str:
    lines = [
        "version: 1",
        "backends:",
        "  monolith: {kind: monolith, url: 'http://127.0.0.1:9', "
        "aws: {instances: [i-0123456789abcdef0], port: 8000, health_check: /healthz}}",
        "  fn: {kind: lambda, handler: 'x:y', aws: {function: shop-fn, alias: live}}",
        "  svc: {kind: ecs, url: 'http://127.0.0.1:8', "
        "aws: {cluster: c, service: s, container_port: 8080, health_check: /healthz}}",
        "facade: {max_rules: 100}",
        "routes:",
    ]
    for i in range(routes):
        split = ["{monolith: 90, fn: 10}", "{svc: 100}", "{monolith: 66.7, svc: 33.3}"][i % 3]
        sticky = ", stickiness: {duration: 600}" if i % 2 else ""
        methods = ", methods: [GET, POST]" if i % 5 == 0 else ""
        headers = ", headers: {X-Canary: ['on']}" if i % 7 == 0 else ""
        lines.append(
            f"  - {{name: r{i}, match: {{paths: ['/api/r{i}/*']{methods}{headers}}}, "
            f"targets: {split}{sticky}}}"
        )
    lines.append("default: monolith")
    return "\n".join(lines) + "\n"


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint with strangler's ALB-limit rules (``strangler lint``)."""
    return subprocess.run(
        [STRANGLER, "lint", str(path)], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_sample_renders_the_golden_template_byte_for_byte() -> None:
    rendered = _render(REPO / "routing.yaml")
    golden = GOLDEN / "alb.yaml"
    if os.environ.get("STRANGLER_UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text(), "regenerate with STRANGLER_UPDATE_GOLDEN=1 and review"
    assert _render(REPO / "routing.yaml") == rendered  # deterministic


def test_rendered_weights_read_back_as_the_routes_percentages() -> None:
    table = load_table(REPO / "routing.yaml")
    template = cloudformation.template(alb.desired(table), "routing.yaml")
    for route in table.routes:
        resource = template["Resources"][cloudformation.logical_id("Rule", route.name)]
        (action,) = resource["Properties"]["Actions"]
        if route.fixed is not None:  # a deny rule
            assert action["Type"] == "fixed-response"
            assert action["FixedResponseConfig"]["StatusCode"] == str(route.fixed.status)
            continue
        weights = tuple(g["Weight"] for g in action["ForwardConfig"]["TargetGroups"])
        assert shares_from_alb(weights) == tuple(t.share for t in route.targets if t.share)
        assert resource["Properties"]["Priority"] == route.priority


def test_locally_a_sticky_cookie_naming_a_backend_with_no_weight_is_ignored() -> None:
    """The facade's half of the sticky rollback (``facade.proxy.choice``): the cookie
    pins its client while the backend has a share, and means nothing once it has none."""
    text = (REPO / "routing.yaml").read_text()
    canary = "targets: {monolith: 90, orders: 10}"
    split = parse_table(text.replace(canary, "targets: {monolith: 0.1, orders: 99.9}"), "r")
    rolled = parse_table(text.replace(canary, "targets: {monolith: 100, orders: 0}"), "r")
    route = split.route("orders")
    first = Chooser(split, b"secret", random.Random(3)).choose(route, {})
    assert (first.backend, first.decision) == ("orders", "weight")
    assert first.set_cookie is not None
    cookie = {"cookie": [first.set_cookie.split(";")[0]]}
    for table, expected in ((split, ("orders", "sticky")), (rolled, ("monolith", "weight"))):
        chooser = Chooser(table, b"secret", random.Random(3))
        for _ in range(20):
            again = chooser.choose(table.route("orders"), cookie)
            assert (again.backend, again.decision) == expected


def test_a_backend_at_zero_leaves_the_forward_action_and_keeps_its_target_group() -> None:
    """A rolled-back canary: a sticky cookie naming its group must not reach it on AWS
    either (locally a cookie naming a backend with no weight is ignored), and shifting
    back needs no new group."""
    text = (REPO / "routing.yaml").read_text()
    canary = "targets: {monolith: 90, orders: 10}"
    assert canary in text
    table = parse_table(text.replace(canary, "targets: {monolith: 100, orders: 0}"), "r.yaml")
    listener = alb.desired(table)
    orders = next(r for r in listener.rules if r.route == "orders")
    assert isinstance(orders.body.action, alb.Forward)
    assert orders.body.action.targets == (("monolith", 1),)
    assert orders.body.action.stickiness == table.route("orders").stickiness.duration  # type: ignore[union-attr]
    assert "orders" in {g.backend for g in listener.target_groups}
    template = cloudformation.template(listener, "r.yaml")
    forward = template["Resources"]["RuleOrders"]["Properties"]["Actions"][0]["ForwardConfig"]
    assert forward["TargetGroups"] == [{"TargetGroupArn": {"Ref": "TargetGroupMonolith"},
                                        "Weight": 1}]  # fmt: skip
    assert {"TargetGroupOrders", "InvokePermissionOrders"} <= set(template["Resources"])


def test_cfn_lint_finds_nothing_in_the_sample_or_a_50_route_table(tmp_path: Path) -> None:
    sample = tmp_path / "sample.yaml"
    sample.write_text(_render(REPO / "routing.yaml"))
    big_file = tmp_path / "big-routing.yaml"
    big_file.write_text(_big_table(50))
    big = tmp_path / "big.json"
    big.write_text(_render(big_file, "json"))
    assert len(json.loads(big.read_text())["Resources"]) == 50 + 1 + 3 + 1  # rules, listener, …
    for template in (sample, big):
        result = _lint(template)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_alb_limit_rules_catch_what_cfn_lints_schema_lets_through(tmp_path: Path) -> None:
    template = cloudformation.template(alb.desired(load_table(REPO / "routing.yaml")), "r")
    forward = template["Resources"]["RuleOrders"]["Properties"]["Actions"][0]["ForwardConfig"]
    forward["TargetGroups"][0]["Weight"] = 1500
    forward["TargetGroups"] += [
        {"TargetGroupArn": f"arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                           f"targetgroup/x{i}/0123456789abcdef", "Weight": 1}
        for i in range(4)
    ]  # fmt: skip
    forward["TargetGroupStickinessConfig"]["DurationSeconds"] = 700_000
    bad = tmp_path / "bad.json"
    bad.write_text(cloudformation.dump(template, "json"))
    result = _lint(bad)
    assert result.returncode == 1
    found = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("E")}
    assert found == {"E9101", "E9102", "E9103"}, result.stdout
    assert "6 target groups; a forward action takes at most 5" in result.stdout
    folder = subprocess.run(
        [STRANGLER, "lint", "--rules-path"], capture_output=True, text=True, check=True
    )
    assert Path(folder.stdout.strip(), "alb_limits.py").is_file()


def test_what_an_alb_cannot_do_is_refused_at_render_naming_the_route() -> None:
    text = _big_table(1).replace(
        "targets: {monolith: 90, fn: 10}",
        "targets: {monolith: 90, fn: 10}, stable_key: {header: X-User}",
    )
    with pytest.raises(ConfigError, match=r"t\.yaml:\d+: routes\[r0\]: stable_key .*stickiness"):
        alb.desired(parse_table(text, "t.yaml"))
    overridden = _big_table(1).replace(
        "facade: {max_rules: 100}", "facade: {override: {enabled: true}}"
    )
    with pytest.raises(ConfigError, match="override"):
        alb.desired(parse_table(overridden, "t.yaml"))


# -- against the ELBv2 API of the stand-in ----------------------------------------------


@dataclass
class Alb:
    client: Any  # boto3 elbv2
    listener: str
    lambda_group: str
    routing: Path
    prefix: str
    env: dict[str, str]

    def rules(self) -> dict[str, dict[str, Any]]:
        """Non-default rules by priority, as AWS describes them."""
        return {
            r["Priority"]: {"Conditions": r["Conditions"], "Actions": r["Actions"]}
            for r in self.client.describe_rules(ListenerArn=self.listener)["Rules"]
            if not r["IsDefault"]
        }

    def default(self) -> list[dict[str, Any]]:
        (found,) = self.client.describe_listeners(ListenerArns=[self.listener])["Listeners"]
        return list(found["DefaultActions"])

    def state(self) -> tuple[Any, ...]:
        groups = self.client.describe_target_groups()["TargetGroups"]
        names = sorted(
            g["TargetGroupName"] for g in groups if g["TargetGroupName"].startswith(self.prefix)
        )
        return self.rules(), self.default(), names

    def weights(self, priority: str) -> dict[str, int]:
        action = self.rules()[priority]["Actions"][0]
        names = {
            g["TargetGroupArn"]: g["TargetGroupName"]
            for g in self.client.describe_target_groups()["TargetGroups"]
        }
        return {
            names[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [STRANGLER, *args, "-f", str(self.routing), "--listener", self.listener,
             "--prefix", self.prefix],
            capture_output=True, text=True, timeout=120, check=False, env=self.env,
        )  # fmt: skip


ROUTING = """\
version: 1
backends:
  monolith:
    kind: monolith
    url: http://127.0.0.1:9
    aws: {{instances: [i-0a1b2c3d4e5f60718], port: 8000, vpc_id: {vpc}, health_check: /healthz}}
  catalog:
    kind: ecs
    url: http://127.0.0.1:8
    aws: {{cluster: shop, service: catalog, container_port: 8000, vpc_id: {vpc}}}
  orders:
    kind: lambda
    handler: extracted.orders.handler:lambda_handler
    aws: {{function: shop-orders, alias: live, target_group_arn: '{lambda_group}'}}
routes:
  - name: catalog
    match: {{paths: ['/api/catalog/*']}}
    targets: {{catalog: 100}}
  - name: orders
    match: {{paths: ['/api/orders', '/api/orders/*']}}
    targets: {{monolith: 90, orders: 10}}
    stickiness: {{duration: 3600}}
default: monolith
local:
  aws: {{endpoint: '{endpoint}'}}
"""


@pytest.fixture
def stand_in_alb(aws_endpoints: aws_local.Endpoints, tmp_path: Path) -> Iterator[Alb]:
    """A load balancer with a listener (default: a placeholder group) in the stand-in;
    removed afterwards (the stand-in's state is shared by every server in this process)."""
    kw: dict[str, Any] = {"endpoint_url": aws_endpoints.aws, **aws_local.CREDENTIALS}
    ec2, client = boto3.client("ec2", **kw), boto3.client("elbv2", **kw)
    tag = uuid.uuid4().hex[:6]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    balancer = client.create_load_balancer(Name=f"shop-{tag}", Subnets=subnets)
    lb_arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
    placeholder = client.create_target_group(
        Name=f"hold-{tag}", Protocol="HTTP", Port=80, VpcId=vpc
    )
    lambda_group = client.create_target_group(Name=f"fn-{tag}", TargetType="lambda")
    listener = client.create_listener(
        LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward",
                         "TargetGroupArn": placeholder["TargetGroups"][0]["TargetGroupArn"]}],
    )["Listeners"][0]["ListenerArn"]  # fmt: skip
    routing = tmp_path / "routing.yaml"
    routing.write_text(
        ROUTING.format(
            vpc=vpc,
            lambda_group=lambda_group["TargetGroups"][0]["TargetGroupArn"],
            endpoint=aws_endpoints.aws,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    yield Alb(client, listener, lambda_group["TargetGroups"][0]["TargetGroupArn"], routing,
              f"t{tag}", env)  # fmt: skip
    client.delete_load_balancer(LoadBalancerArn=lb_arn)
    for group in client.describe_target_groups()["TargetGroups"]:
        if group["TargetGroupName"].endswith(tag) or group["TargetGroupName"].startswith(
            f"t{tag}-"
        ):
            client.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
    for subnet in subnets:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_plan_apply_plan_shows_no_changes_and_aws_holds_the_file(stand_in_alb: Alb) -> None:
    first = stand_in_alb.cli("plan")
    assert first.returncode == 0, first.stderr
    assert f"+ target group {stand_in_alb.prefix}-monolith" in first.stdout
    assert (
        "+ rule orders (priority 20): path /api/orders, /api/orders/* → "
        "monolith 90 %, orders 10 %, sticky 3600 s" in first.stdout
    )
    applied = stand_in_alb.cli("apply")
    assert applied.returncode == 0, applied.stderr
    again = stand_in_alb.cli("plan", "--json")
    assert json.loads(again.stdout)["changes"] == []
    assert "no changes" in stand_in_alb.cli("apply").stdout  # a second apply changes nothing

    rules = stand_in_alb.rules()
    assert sorted(rules) == ["10", "20"]
    assert rules["20"]["Conditions"][0]["PathPatternConfig"]["Values"] == [
        "/api/orders",
        "/api/orders/*",
    ]
    forward = rules["20"]["Actions"][0]["ForwardConfig"]
    assert forward["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 3600}
    assert stand_in_alb.weights("20") == {
        f"{stand_in_alb.prefix}-monolith": 9,
        stand_in_alb.lambda_group.split("/")[1]: 1,
    }
    assert stand_in_alb.weights("10") == {f"{stand_in_alb.prefix}-catalog": 1}
    (default,) = stand_in_alb.default()
    monolith_group = stand_in_alb.client.describe_target_groups(
        Names=[f"{stand_in_alb.prefix}-monolith"]
    )["TargetGroups"][0]
    assert default["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": monolith_group["TargetGroupArn"], "Weight": 1}
    ]
    registered = stand_in_alb.client.describe_target_health(
        TargetGroupArn=monolith_group["TargetGroupArn"]
    )
    assert [t["Target"]["Id"] for t in registered["TargetHealthDescriptions"]] == [
        "i-0a1b2c3d4e5f60718"
    ]


def test_a_deny_rule_becomes_a_fixed_response_action_and_reads_back_the_same(
    stand_in_alb: Alb,
) -> None:
    deny = (
        "  - name: internal\n    match: {paths: ['/internal/*']}\n"
        "    fixed_response: {status: 404, content_type: application/json, "
        'body: \'{"error": "no"}\'}\ndefault: monolith\n'
    )
    text = stand_in_alb.routing.read_text()
    stand_in_alb.routing.write_text(text.replace("default: monolith\n", deny, 1))
    plan = stand_in_alb.cli("plan")
    assert plan.returncode == 0, plan.stderr
    assert (
        "+ rule internal (priority 30): path /internal/* → fixed response 404 "
        "(application/json)" in plan.stdout
    )
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.rules()["30"]["Actions"][0]["FixedResponseConfig"] == {
        "StatusCode": "404",
        "ContentType": "application/json",
        "MessageBody": '{"error": "no"}',
    }
    assert json.loads(stand_in_alb.cli("plan", "--json").stdout)["changes"] == []


def test_a_shift_with_apply_changes_exactly_one_rules_weights(stand_in_alb: Alb) -> None:
    assert stand_in_alb.cli("apply").returncode == 0
    before_rules, before_default = stand_in_alb.rules(), stand_in_alb.default()
    shifted = stand_in_alb.cli("shift", "orders", "--to", "orders", "--percent", "50", "--apply")
    assert shifted.returncode == 0, shifted.stderr
    assert "applied: ~ rule orders: monolith 90 → 50 %, orders 10 → 50 %" in shifted.stdout
    after_rules = stand_in_alb.rules()
    assert after_rules["10"] == before_rules["10"]
    assert stand_in_alb.default() == before_default
    weights = stand_in_alb.weights("20")
    assert sorted(weights.values()) == [1, 1]
    assert after_rules["20"]["Conditions"] == before_rules["20"]["Conditions"]
    assert "orders: 50" in stand_in_alb.routing.read_text()

    rolled = stand_in_alb.cli("rollback", "orders", "--apply")
    assert rolled.returncode == 0, rolled.stderr
    assert stand_in_alb.weights("20") == {f"{stand_in_alb.prefix}-monolith": 1}
    assert stand_in_alb.cli("drift").returncode == 0


def _observed(alb_: Alb, route: str) -> dict[str, float]:
    return observed_shares(load_table(alb_.routing), route, alb_.listener, False, alb_.prefix)


def _file_shares(alb_: Alb, route: str) -> dict[str, float]:
    return {t.backend: t.percent for t in load_table(alb_.routing).route(route).targets}


def test_a_rollback_takes_the_backend_out_of_the_forward_action_and_a_shift_brings_it_back(
    stand_in_alb: Alb,
) -> None:
    """The sticky rollback on the ALB, and the read-back a rollout compares with the file."""
    assert stand_in_alb.cli("apply").returncode == 0
    assert _observed(stand_in_alb, "orders") == {"monolith": 90.0, "orders": 10.0}
    assert _observed(stand_in_alb, "default") == {"monolith": 100.0}

    rolled = stand_in_alb.cli("rollback", "orders", "--apply")
    assert rolled.returncode == 0, rolled.stderr
    assert "applied: ~ rule orders: monolith 90 → 100 %, orders 10 % → out of the action" in (
        rolled.stdout
    )
    forward = stand_in_alb.rules()["20"]["Actions"][0]["ForwardConfig"]
    arns = [g["TargetGroupArn"] for g in forward["TargetGroups"]]
    assert stand_in_alb.lambda_group not in arns
    assert len(arns) == 1
    assert forward["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 3600}
    # the group itself stays, ready for the next shift
    assert stand_in_alb.client.describe_target_groups(TargetGroupArns=[stand_in_alb.lambda_group])
    assert _observed(stand_in_alb, "orders") == {"monolith": 100.0, "orders": 0.0}
    assert _observed(stand_in_alb, "orders") == _file_shares(stand_in_alb, "orders")
    assert json.loads(stand_in_alb.cli("plan", "--json").stdout)["changes"] == []

    back = stand_in_alb.cli("shift", "orders", "--to", "orders", "--percent", "5", "--apply")
    assert back.returncode == 0, back.stderr
    assert "applied: ~ rule orders: monolith 100 → 95 %, orders into the action at 5 %" in (
        back.stdout
    )
    assert stand_in_alb.weights("20") == {
        f"{stand_in_alb.prefix}-monolith": 19,
        stand_in_alb.lambda_group.split("/")[1]: 1,
    }
    assert _observed(stand_in_alb, "orders") == {"monolith": 95.0, "orders": 5.0}
    assert _observed(stand_in_alb, "orders") == _file_shares(stand_in_alb, "orders")


def test_a_weight_zero_target_group_left_in_a_rule_is_drift(stand_in_alb: Alb) -> None:
    """A rule that still names a rolled-back group at weight 0 (by hand, or by an older
    apply) would let its sticky clients through: drift shows it, apply takes it out."""
    text = stand_in_alb.routing.read_text()
    stand_in_alb.routing.write_text(
        text.replace("{monolith: 90, orders: 10}", "{monolith: 100, orders: 0}")
    )
    assert stand_in_alb.cli("apply").returncode == 0
    (orders,) = [
        r
        for r in stand_in_alb.client.describe_rules(ListenerArn=stand_in_alb.listener)["Rules"]
        if r["Priority"] == "20"
    ]
    forward = orders["Actions"][0]["ForwardConfig"]
    stand_in_alb.client.modify_rule(
        RuleArn=orders["RuleArn"],
        Actions=[{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [*forward["TargetGroups"],
                             {"TargetGroupArn": stand_in_alb.lambda_group, "Weight": 0}],
            "TargetGroupStickinessConfig": forward["TargetGroupStickinessConfig"]}}],
    )  # fmt: skip
    assert _observed(stand_in_alb, "orders") == {"monolith": 100.0, "orders": 0.0}
    drifted = stand_in_alb.cli("drift")
    assert drifted.returncode == 1
    assert "~ rule orders: orders 0 % → out of the action" in drifted.stdout
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.weights("20") == {f"{stand_in_alb.prefix}-monolith": 1}


def test_reading_back_a_route_the_listener_has_no_rule_for_fails(stand_in_alb: Alb) -> None:
    with pytest.raises(CheckFailed, match="no rule strangler can read for route 'orders'"):
        _observed(stand_in_alb, "orders")  # nothing applied yet
    with pytest.raises(ConfigError, match="no route named 'nope'"):
        _observed(stand_in_alb, "nope")


def test_drift_is_detected_shown_and_cleared_by_apply(stand_in_alb: Alb) -> None:
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.cli("drift").returncode == 0
    rules = stand_in_alb.client.describe_rules(ListenerArn=stand_in_alb.listener)["Rules"]
    orders = next(r for r in rules if r["Priority"] == "20")
    groups = orders["Actions"][0]["ForwardConfig"]["TargetGroups"]
    stand_in_alb.client.modify_rule(
        RuleArn=orders["RuleArn"],
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": groups[0]["TargetGroupArn"], "Weight": 1},
                        {"TargetGroupArn": groups[1]["TargetGroupArn"], "Weight": 3},
                    ]
                },
            }
        ],
    )  # fmt: skip  - somebody changed it in the console
    drifted = stand_in_alb.cli("drift")
    assert drifted.returncode == 1
    assert (
        "~ rule orders: monolith 25 → 90 %, orders 75 → 10 %, stickiness off → 3600"
        in drifted.stdout
    )
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.cli("drift").returncode == 0


class FailingClient(ElbClient):
    """Fails the n-th write call, as AWS may (throttling, a limit, a network cut)."""

    WRITES = {"create_rule", "modify_rule", "delete_rule", "set_rule_priorities",
              "modify_listener", "create_target_group", "register_targets"}  # fmt: skip

    def __init__(self, client: Any, fail_at: set[int]) -> None:
        super().__init__(client)
        self.fail_at, self.writes = fail_at, 0

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        if operation in self.WRITES:
            self.writes += 1
            if self.writes in self.fail_at:
                raise AwsError(f"{operation}: Throttling: injected")
        return super().call(operation, **kwargs)


def _four_changes(alb_: Alb) -> None:
    """Edit the file so that the plan is: move two rules (a new first route shifts the
    numbered ones), modify one, create one, change the default."""
    text = alb_.routing.read_text()
    alb_.routing.write_text(
        text.replace("targets: {monolith: 90, orders: 10}", "targets: {monolith: 50, orders: 50}")
        .replace("default: monolith", "default: {targets: {monolith: 80, catalog: 20}}")
        .replace("routes:\n", "routes:\n  - {name: pages, match: {paths: ['/shop/*']}, "
                 "targets: {catalog: 100}, priority: 5}\n")
    )  # fmt: skip


def _apply_failing(alb_: Alb, fail_at: set[int]) -> ApplyFailed:
    want = alb.desired(load_table(alb_.routing), alb_.prefix)
    client = FailingClient(alb_.client, fail_at)
    plan = make_plan(want, live.read(client, alb_.listener, want))
    assert [type(s) for s in plan.steps] == [SetPriorities, ModifyRule, CreateRule, ModifyDefault]
    with pytest.raises(ApplyFailed) as failure:
        AwsExecutor(client, lambda _: None).execute(plan)
    return failure.value


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5])  # the n-th of the 5 write calls
def test_a_failure_mid_apply_is_undone_and_leaves_aws_as_it_was(
    stand_in_alb: Alb, fail_at: int
) -> None:
    assert stand_in_alb.cli("apply").returncode == 0
    _four_changes(stand_in_alb)
    before = stand_in_alb.state()
    failure = _apply_failing(stand_in_alb, {fail_at})
    assert failure.undone
    assert "failed: " in str(failure)
    assert "Throttling: injected" in str(failure)
    assert stand_in_alb.state() == before
    # and the same plan then goes through
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.cli("drift").returncode == 0


def test_an_undo_that_fails_too_says_what_is_left(stand_in_alb: Alb) -> None:
    assert stand_in_alb.cli("apply").returncode == 0
    _four_changes(stand_in_alb)
    failure = _apply_failing(stand_in_alb, {5, 6})  # the default fails, then undoing the create
    assert not failure.undone
    assert "could not undo: + rule pages" in str(failure)
    assert "strangler plan" in str(failure)


def test_a_failed_apply_of_a_shift_leaves_the_file_and_aws_unchanged(stand_in_alb: Alb) -> None:
    assert stand_in_alb.cli("apply").returncode == 0
    text, before = stand_in_alb.routing.read_text(), stand_in_alb.state()
    result = subprocess.run(
        [STRANGLER, "shift", "orders", "--to", "orders", "--percent", "50", "--apply",
         "-f", str(stand_in_alb.routing), "--prefix", stand_in_alb.prefix,
         "--listener", stand_in_alb.listener.replace("listener/", "listener/x")],
        capture_output=True, text=True, timeout=120, check=False, env=stand_in_alb.env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "strangler: error: describe_listeners" in result.stderr
    assert stand_in_alb.routing.read_text() == text
    assert stand_in_alb.state() == before


def test_a_foreign_rule_on_a_priority_the_file_needs_is_an_error(stand_in_alb: Alb) -> None:
    hold = stand_in_alb.client.describe_listeners(ListenerArns=[stand_in_alb.listener])[
        "Listeners"
    ][0]
    stand_in_alb.client.create_rule(
        ListenerArn=stand_in_alb.listener, Priority=20,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/legacy/*"]}}],
        Actions=hold["DefaultActions"],
    )  # fmt: skip
    result = stand_in_alb.cli("plan")
    assert result.returncode == 2
    assert "route orders needs priority 20, held by a rule strangler does not own" in result.stderr


class RecordingClient(ElbClient):
    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.operations: set[str] = set()

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        self.operations.add(operation)
        return super().call(operation, **kwargs)


def test_every_call_an_apply_makes_is_allowed_by_the_rendered_iam_policy(
    stand_in_alb: Alb,
) -> None:
    client = RecordingClient(stand_in_alb.client)
    for _ in range(2):  # the first apply creates; the second changes rules and the default
        want = alb.desired(load_table(stand_in_alb.routing), stand_in_alb.prefix)
        AwsExecutor(client, lambda _: None).execute(
            make_plan(want, live.read(client, stand_in_alb.listener, want))
        )
        _four_changes(stand_in_alb)
    allowed = {
        action
        for statement in iam.policy(stand_in_alb.listener, stand_in_alb.prefix)["Statement"]
        for action in statement["Action"]
    }
    assert client.operations >= {"create_target_group", "create_rule", "modify_rule"}
    assert {iam.ACTIONS[op] for op in client.operations} <= allowed


def test_a_deleted_rule_is_put_back_when_a_later_call_fails(stand_in_alb: Alb) -> None:
    _four_changes(stand_in_alb)
    assert stand_in_alb.cli("apply").returncode == 0
    text = stand_in_alb.routing.read_text()
    stand_in_alb.routing.write_text(
        text.replace("  - {name: pages, match: {paths: ['/shop/*']}, targets: {catalog: 100}, "
                     "priority: 5}\n", "")
        .replace("default: {targets: {monolith: 80, catalog: 20}}", "default: monolith")
    )  # fmt: skip
    before = stand_in_alb.state()
    want = alb.desired(load_table(stand_in_alb.routing), stand_in_alb.prefix)
    client = FailingClient(stand_in_alb.client, set())
    plan = make_plan(want, live.read(client, stand_in_alb.listener, want))
    assert [type(s).__name__ for s in plan.steps] == [
        "DeleteRule",
        "SetPriorities",
        "ModifyDefault",
    ]
    writes = sum(len(s.moves) if isinstance(s, SetPriorities) else 1 for s in plan.steps)
    client.fail_at = {writes}  # the default action, after the rule is gone
    with pytest.raises(ApplyFailed) as failure:
        AwsExecutor(client, lambda _: None).execute(plan)
    assert failure.value.undone
    assert stand_in_alb.state() == before  # the rule is back, priorities and default as they were


def test_a_shadowed_route_forwards_to_the_facades_own_target_group(stand_in_alb: Alb) -> None:
    """ALB cannot mirror: while a route is shadowed its rule sends everything to the
    facade's target group (render ecs's facade service registers there), on render and
    on apply alike; removing the shadow block gives the rule its targets back."""
    text = stand_in_alb.routing.read_text()
    shadowed = text.replace(
        "    targets: {catalog: 100}\n",
        "    targets: {catalog: 100}\n    shadow: {to: monolith}\n",
        1,
    )
    assert shadowed != text
    stand_in_alb.routing.write_text(shadowed)
    table = load_table(stand_in_alb.routing)
    template = cloudformation.template(alb.desired(table), "routing.yaml")
    resources = template["Resources"]
    group = resources["TargetGroupFacade"]["Properties"]
    assert group["TargetType"] == "ip"
    assert group["Port"] == table.settings.listen_port
    assert group["HealthCheckPath"] == "/__facade/health"
    assert template["Outputs"]["TargetGroupFacadeArn"] == {"Value": {"Ref": "TargetGroupFacade"}}
    rule = next(
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::ListenerRule"
        and r["Properties"]["Priority"] == 10
    )  # fmt: skip
    forwarded = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
    assert forwarded == [{"TargetGroupArn": {"Ref": "TargetGroupFacade"}, "Weight": 1}]

    applied = stand_in_alb.cli("apply")
    assert applied.returncode == 0, applied.stderr
    assert stand_in_alb.weights("10") == {f"{stand_in_alb.prefix}-facade": 1}
    assert sorted(stand_in_alb.weights("20").values()) == [1, 9]  # not shadowed: its split
    assert json.loads(stand_in_alb.cli("plan", "--json").stdout)["changes"] == []
    # what a rollout reads back: the facade splits the shadowed route as the file says
    applied_table = load_table(stand_in_alb.routing)
    assert _observed(stand_in_alb, "catalog") == {"catalog": 0.0, "facade": 100.0}
    assert (
        weight_in_force(
            applied_table, "catalog", "catalog", stand_in_alb.listener, False, stand_in_alb.prefix
        )
        == 100.0
    )
    assert (
        weight_in_force(
            applied_table, "orders", "orders", stand_in_alb.listener, False, stand_in_alb.prefix
        )
        == 10.0
    )

    stand_in_alb.routing.write_text(text)  # the shadow is over: the targets again
    assert stand_in_alb.cli("apply").returncode == 0
    assert stand_in_alb.weights("10") == {f"{stand_in_alb.prefix}-catalog": 1}


def test_a_backend_named_facade_cannot_share_the_facades_target_group() -> None:
    text = """\
version: 1
backends:
  monolith: {kind: monolith, url: "http://127.0.0.1:9", aws: {instances: [i-0a1b2c3d4e5f60718]}}
  facade: {kind: ecs, url: "http://127.0.0.1:8", aws: {cluster: c, service: s, container_port: 80}}
routes:
  - name: catalog
    match: {paths: ['/api/catalog/*']}
    targets: {facade: 100}
    shadow: {to: monolith}
default: monolith
"""
    table = parse_table(text, "routing.yaml")
    with pytest.raises(ConfigError, match=r"backends\.facade: the name is the facade.s own"):
        alb.desired(table)


def test_the_facades_target_group_name_is_checked_like_the_backends() -> None:
    """A prefix that makes ``<prefix>-facade`` longer than AWS's 32 characters is refused
    at render, as for a backend's group, never sent to AWS."""
    text = """\
version: 1
backends:
  monolith:
    kind: monolith
    url: "http://127.0.0.1:9"
    aws: {{target_group_arn: "{arn}/m/0123456789abcdef"}}
  orders:
    kind: ecs
    url: "http://127.0.0.1:8"
    aws: {{cluster: c, service: s, container_port: 80, target_group_arn: "{arn}/o/01234567"}}
routes:
  - name: orders
    match: {{paths: ['/api/orders/*']}}
    targets: {{monolith: 100}}
    shadow: {{to: orders}}
default: monolith
""".format(arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup")
    table = parse_table(text, "routing.yaml")
    assert alb.desired(table, "shop").target_groups[-1].name == "shop-facade"
    with pytest.raises(ConfigError, match=r"backends\.facade: target group name 'a{26}-facade'"):
        alb.desired(table, "a" * 26)
