"""The SAM, ECS and IAM outputs: golden files, deterministic, cfn-lint clean with our
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
from samtranslator.translator.transform import transform

from facade.aws import cloudformation, ecs, iam, sam
from facade.exceptions import ConfigError
from facade.routing.loader import load_table, parse_table

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
STRANGLER = str(Path(sys.executable).with_name("strangler"))
LISTENER = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    "listener/app/shop/0123456789abcdef/fedcba9876543210"
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRANGLER, *args], capture_output=True, text=True, timeout=300, check=False, cwd=REPO
    )


@pytest.mark.parametrize("kind", ["sam", "ecs"])
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
