"""The dashboard in a real headless Chromium, against the sample's routing.yaml served
by a real facade with live traffic: what a migration engineer sees and does."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from facade.rollout.controller import Controller
from facade.rollout.state import RolloutStore, state_dir
from facade.routing.loader import load_table
from tests.dashboard.browser import chromium, screenshot, until
from tests.dashboard.stack import Stack, sample_stack
from tests.rollout.controller_kit import Provider

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, browser: WebDriver) -> Iterator[Stack]:
    with sample_stack(tmp_path_factory.mktemp("dashboard")) as served:
        yield served


def sign_in(browser: WebDriver, stack: Stack, token: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(stack.page)
    field = browser.find_element(By.ID, "token")
    field.send_keys(token or stack.token)
    field.submit()


def configured(browser: WebDriver, route: str) -> dict[str, float]:
    """The configured weights the page shows for a route, by backend."""
    return {
        str(row["backend"]): float(row["percent"])
        for row in browser.execute_script(
            "return Array.from(document.querySelectorAll("
            "'tbody[data-route=\"' + arguments[0] + '\"] tr[data-backend]')).map(r => ({"
            "backend: r.dataset.backend, "
            "percent: r.querySelector('td.configured').dataset.percent}))",
            route,
        )
    }


def click(browser: WebDriver, selector: str) -> None:
    """Click what ``selector`` finds now (a poll may have just replaced the node)."""

    def attempt() -> bool:
        from selenium.webdriver.common.by import By

        browser.find_element(By.CSS_SELECTOR, selector).click()
        return True

    until(attempt, 5, f"click {selector}")


def test_a_request_without_the_token_is_refused(browser: WebDriver, stack: Stack) -> None:
    """No token: 401 and a sign-in form, nothing of the page; a wrong token is refused;
    the public listener has no dashboard at all."""
    from selenium.webdriver.common.by import By

    assert httpx.get(stack.page, timeout=5).status_code == 401
    assert httpx.get(f"{stack.page}/panel/routes", timeout=5).status_code == 401
    assert httpx.get(f"{stack.facade.url}/__facade/dashboard", timeout=5).status_code == 404
    browser.delete_all_cookies()
    browser.get(stack.page)
    assert browser.find_elements(By.ID, "token")
    assert not browser.find_elements(By.CSS_SELECTOR, "table.routes")
    sign_in(browser, stack, token="not-the-token")
    until(lambda: "not the admin token" in browser.page_source, 5, "the refusal")
    assert not browser.find_elements(By.CSS_SELECTOR, "table.routes")
    screenshot(browser, "refused-without-token")


def test_the_page_lists_the_sample_routes_with_their_weights(
    browser: WebDriver, stack: Stack
) -> None:
    """Every route of the file, in evaluation order and the default last, with the
    weights the file gives each backend."""
    sign_in(browser, stack)
    table = load_table(stack.routing)
    until(
        lambda: (
            browser.execute_script(
                "return Array.from(document.querySelectorAll('tbody.route'))"
                ".map(b => b.dataset.route)"
            )
            == [r.name for r in table.all_routes]
        ),
        5,
        "the routes in evaluation order",
    )
    for route in table.all_routes:
        assert configured(browser, route.name) == {t.backend: t.percent for t in route.targets}
    # traffic is flowing: the observed share and the charts fill in
    until(
        lambda: browser.execute_script(
            "return document.querySelector("
            '\'tbody[data-route="orders"] tr[data-backend="orders"] td.observed\')'
            ".dataset.percent"
        ),
        10,
        "an observed share for the orders Lambda",
    )
    until(
        lambda: (
            int(
                browser.execute_script(
                    "return document.getElementById('charts').dataset.samples || 0"
                )
            )
            >= 3
        ),
        10,
        "three samples in the charts",
    )
    screenshot(browser, "route-map")


def test_the_shadow_panel_shows_the_top_differing_path_with_an_example(
    browser: WebDriver, stack: Stack
) -> None:
    """The catalog's copies go to the monolith, whose answers name another backend: the
    panel counts the comparisons and shows ``$.backend`` differing, with a pair."""
    from selenium.webdriver.common.by import By

    sign_in(browser, stack)
    row = 'table.shadow-fields[data-route="catalog"] tr[data-field="$.backend"]'
    until(lambda: browser.find_elements(By.CSS_SELECTOR, row), 15, "the $.backend difference")
    found = browser.find_element(By.CSS_SELECTOR, row)
    assert "differs" in (found.get_attribute("class") or "")
    assert '"monolith"' in found.find_element(By.CSS_SELECTOR, "pre.shadow").text
    assert '"catalog"' in found.find_element(By.CSS_SELECTOR, "pre.primary").text
    compared = browser.find_element(
        By.CSS_SELECTOR, 'table.shadows tr[data-route="catalog"] td.num'
    ).text
    assert int(compared) > 0
    screenshot(browser, "shadow")


def test_a_shift_from_the_command_line_appears_within_two_seconds(
    browser: WebDriver, stack: Stack
) -> None:
    """``strangler shift`` edits the file; the open page shows the new weights within 2 s."""
    sign_in(browser, stack)
    until(lambda: configured(browser, "orders"), 5, "the orders route")
    done = subprocess.run(
        [sys.executable, "-m", "facade.cli", "shift", "orders", "--to", "orders",
         "--percent", "20", "--routing", str(stack.routing)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shifted = time.monotonic()
    until(
        lambda: configured(browser, "orders") == {"monolith": 80.0, "orders": 20.0},
        2,
        "the CLI's shift on the page",
    )
    assert time.monotonic() - shifted < 2
    screenshot(browser, "cli-shift")


def test_the_shift_button_changes_the_weight_the_file_and_the_audit_log(
    browser: WebDriver, stack: Stack
) -> None:
    """Shift…, a percentage, Review…: the confirmation shows before and after; Confirm
    writes routing.yaml, adds the audit line, and the page shows the new weights."""
    from selenium.webdriver.common.by import By

    sign_in(browser, stack)
    before = {t.backend: t.percent for t in load_table(stack.routing).route("orders").targets}
    click(browser, 'tbody[data-route="orders"] button[data-act="shift"]')
    field = until(
        lambda: browser.find_element(By.CSS_SELECTOR, '#action input[name="percent"]'),
        5,
        "the shift form",
    )
    field.clear()
    field.send_keys("35")
    browser.find_element(By.CSS_SELECTOR, "#action button.primary").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#action .confirm"), 5, "the confirmation")
    shown = {
        row.get_attribute("data-backend"): (
            float(row.find_element(By.CSS_SELECTOR, ".before").get_attribute("data-percent") or 0),
            float(row.find_element(By.CSS_SELECTOR, ".after").get_attribute("data-percent") or 0),
        )
        for row in browser.find_elements(By.CSS_SELECTOR, "#action .before-after tr[data-backend]")
    }
    assert shown == {
        "monolith": (before["monolith"], 65.0),
        "orders": (before["orders"], 35.0),
    }
    screenshot(browser, "shift-confirmation")
    assert load_table(stack.routing).route("orders").share_of("orders") == before["orders"] * 10
    browser.find_element(By.CSS_SELECTOR, "#action .confirm-button").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#action .result.ok"), 5, "the result")
    route = load_table(stack.routing).route("orders")
    assert {t.backend: t.percent for t in route.targets} == {"monolith": 65.0, "orders": 35.0}
    last = json.loads(stack.audit().read_text().splitlines()[-1])
    assert (last["who"], last["action"], last["route"]) == ("dashboard", "shift", "orders")
    assert last["after"] == {"monolith": 65.0, "orders": 35.0}
    until(
        lambda: configured(browser, "orders") == {"monolith": 65.0, "orders": 35.0},
        2,
        "the new weights on the page",
    )
    until(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, '#audit tr[data-action="shift"][data-route="orders"]'
        ),
        3,
        "the shift in the audit panel",
    )
    screenshot(browser, "shift-done")


def test_a_refused_edit_shows_why(browser: WebDriver, stack: Stack) -> None:
    """An edit the validated edit path refuses shows its reason, and nothing is written:
    the default route has no new backend to promote."""
    from selenium.webdriver.common.by import By

    sign_in(browser, stack)
    before = stack.routing.read_text()
    lines = stack.audit().read_text().count("\n")
    click(browser, 'tbody[data-route="default"] button[data-act="promote"]')
    message = until(
        lambda: browser.find_element(By.CSS_SELECTOR, "#action .refused").text, 5, "the refusal"
    )
    assert "nothing to promote: the route has no non-monolith backend" in message
    assert not browser.find_elements(By.CSS_SELECTOR, "#action .confirm-button")
    assert stack.routing.read_text() == before
    assert stack.audit().read_text().count("\n") == lines
    screenshot(browser, "refused-edit")


class _Stop(Exception):
    """Ends the scripted controller after a few analyses, mid-step, like a kill."""


def test_a_rollout_under_way_shows_its_step_and_verdicts(browser: WebDriver, stack: Stack) -> None:
    """The state file the real controller and analysis write (from scripted readings)
    shows as its step n/m, the sample against the requirement and each verdict with its
    reason; Pause… goes through the rollout's command file and the page follows."""
    from selenium.webdriver.common.by import By

    routing = stack.routing
    plan = load_table(routing).route("orders").rollout
    assert plan is not None
    now = time.time()
    clock = [now - 3 * plan.interval - 5]
    provider = Provider(routing, per_read=120)

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        if provider.reads >= 3:
            raise _Stop

    store = RolloutStore(state_dir(routing), "orders")
    controller = Controller(
        routing, "orders", store, provider,
        clock=lambda: clock[0], sleep=sleep, say=lambda line: None,
    )  # fmt: skip
    with pytest.raises(_Stop):
        controller.run()
    state = store.load()
    assert state is not None
    assert str(state.phase) == "progressing"

    sign_in(browser, stack)
    article = f'article.rollout[data-route="orders"][data-step="{state.step + 1}"]'
    until(lambda: browser.find_elements(By.CSS_SELECTOR, article), 5, "the rollout's step")
    text = browser.find_element(By.CSS_SELECTOR, article).text
    assert f"step {state.step + 1}/{len(plan.steps)}" in text
    assert f"canary {state.step_canary} of {plan.steps[state.step].min_sample} required" in text
    results = {
        row.get_attribute("data-metric"): row.get_attribute("data-result")
        for row in browser.find_elements(By.CSS_SELECTOR, f"{article} tr.verdict")
    }
    assert results == {v["metric"]: v["result"] for v in state.verdicts}
    assert {"errors", "latency"} <= set(results)
    for verdict in state.verdicts:
        assert verdict["reason"] in text
    screenshot(browser, "rollout")

    click(browser, f'{article} button[data-act="pause"]')
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#action .confirm"), 5, "the confirmation")
    browser.find_element(By.CSS_SELECTOR, "#action .confirm-button").click()
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#action .result.ok"), 10, "the result")
    commands = [json.loads(line) for line in store.commands_path.read_text().splitlines()]
    assert [(c["command"], c["who"]) for c in commands] == [("pause", "dashboard")]
    paused = store.load()
    assert paused is not None
    assert str(paused.phase) == "paused"
    until(
        lambda: browser.find_elements(By.CSS_SELECTOR, 'article.rollout[data-state="paused"]'),
        3,
        "the paused rollout on the page",
    )
    click(browser, "#action button.cancel")
    until(lambda: not browser.find_elements(By.CSS_SELECTOR, "#action .dialog"), 3, "closed")
    screenshot(browser, "dashboard")
    assert stack.statuses
    assert set(stack.statuses) <= {200, 503}, set(stack.statuses)
