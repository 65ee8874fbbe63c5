"""``strangler render ecs`` for a table with shadowed routes: the facade itself becomes a
Fargate service behind the ALB, running the same routing.yaml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from facade.aws import cloudformation, ecs
from facade.routing.loader import load_table, parse_table

REPO = Path(__file__).resolve().parents[2]


def shadowed_sample() -> str:
    text = (REPO / "routing.yaml").read_text()
    anchor = (
        "    stickiness: {duration: 3600}      # a client keeps the backend it first got, for 1 h\n"
    )
    assert anchor in text
    return text.replace(anchor, anchor + "    shadow: {to: orders}\n")


def test_the_facade_is_a_service_when_a_route_is_shadowed(tmp_path: Path) -> None:
    table = parse_table(shadowed_sample(), str(REPO / "routing.yaml"))
    document = ecs.template(table, "routing.yaml")
    resources = document["Resources"]
    service = resources["ServiceFacade"]["Properties"]
    assert service["LoadBalancers"] == [
        {"ContainerName": "facade", "ContainerPort": 8000,
         "TargetGroupArn": {"Ref": "TargetGroupFacadeArn"}}
    ]  # fmt: skip
    assert service["Tags"] == [{"Key": "strangler:shadowed-routes", "Value": "orders"}]
    (container,) = resources["TaskDefinitionFacade"]["Properties"]["ContainerDefinitions"]
    assert container["Command"] == [
        "strangler", "serve", "--routing", "/app/routing.yaml", "--host", ecs.ALL_INTERFACES,
        "--port", "8000", "--workers", "1",
    ]  # fmt: skip
    assert "http://127.0.0.1:9901/__facade/health" in container["HealthCheck"]["Command"][1]
    assert "ServiceCatalog" in resources  # the ECS backends are still there
    rendered = tmp_path / "ecs.yaml"
    rendered.write_text(cloudformation.dump(document, "yaml"))
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--", str(rendered)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_without_a_shadow_the_sample_renders_no_facade_service() -> None:
    document = ecs.template(load_table(REPO / "routing.yaml"), "routing.yaml")
    assert "ServiceFacade" not in document["Resources"]
