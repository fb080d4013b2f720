"""Tester's console end to end in Debian's chromium (Playwright), auth required.

Screenshots land in test-artifacts/console/ for people to look at.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from cds_service.fhir.scenarios import build_request, load_scenario
from cds_service.persistence.report import ReportFilter
from tests.conftest import FIXTURES, ROOT
from tests.console_support import (
    CK_VALUES,
    console_app,
    scenario_with_delete_suggestion,
    scenario_with_suggestion,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "console"
INDICATOR_LABEL = {"critical": "Critical", "warning": "Warning", "info": "Info"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent (apt-get install -y chromium; .ci/run does this)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
Page = sync_api.Page
expect = sync_api.expect


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """The service on a free loopback port, console on, JWT required on every CDS call."""
    app = console_app(tmp_path_factory.mktemp("console-e2e"), AUTH="required")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    tab.set_default_timeout(15000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def stored(app: Flask, recommendation: str) -> list[dict[str, Any]]:
    """The override report's rows for one recommendation, after queued audit writes."""
    store = app.extensions["cds_store"]
    store.flush()
    rows: list[dict[str, Any]] = store.report(ReportFilter(period="day"))["rows"]
    # The report has used both snake_case and camelCase keys; the console reads either.
    plain = [{key.replace("_", "").lower(): value for key, value in row.items()} for row in rows]
    return [row for row in plain if row.get("recommendationid") == recommendation]


def open_patient(page: Page, base: str, scenario: str) -> None:
    page.goto(f"{base}/console/")
    page.locator(f'a[href="/console/patients/{scenario}"]').click()
    expect(page.locator("h1")).to_contain_text(scenario)
    page.wait_for_load_state("load")  # the page's scripts have run


def test_card_suggestion_changes_the_draft_and_accept_is_stored(
    served: tuple[str, Flask], page: Page
) -> None:
    base, app = served
    scenario, card = scenario_with_delete_suggestion()
    suggestion = next(
        s for s in card["suggestions"] if any(a["type"] == "delete" for a in s["actions"])
    )
    target = next(a["resourceId"] for a in suggestion["actions"] if a["type"] == "delete")
    open_patient(page, base, scenario)
    expect(page.locator(f'#draft-list [data-ref="{target}"]')).to_be_visible()

    page.get_by_role("button", name="Check draft orders (order-select)").click()
    shown = page.locator("article.card", has_text=card["summary"])
    expect(shown).to_be_visible()
    expect(shown.locator(".indicator")).to_have_text(INDICATOR_LABEL[card["indicator"]])
    expect(shown).to_have_attribute("data-recommendation", card["recommendationId"])
    shot(page, "order-select-card")

    button = shown.get_by_role("button", name=re.compile(re.escape(suggestion["label"])))
    button.click()
    expect(page.locator(f'#draft-list [data-ref="{target}"]')).to_have_count(0)
    expect(button).to_be_disabled()
    assert page.evaluate(A11Y_AUDIT)["low"] == [], (
        "a pressed (hovered, disabled) button stays legible"
    )
    expect(shown.locator(".card-status")).to_contain_text("Feedback stored")
    shot(page, "suggestion-applied")
    rows = stored(app, card["recommendationId"])
    assert sum(row.get("accepted") or 0 for row in rows) >= 1


@pytest.mark.parametrize(
    ("action", "hook", "badge"),
    [("update", "order-select", "updated"), ("create", "patient-view", "created")],
)
def test_update_and_create_suggestions_change_the_draft(
    served: tuple[str, Flask], page: Page, action: str, hook: str, badge: str
) -> None:
    base, _ = served
    scenario, card, suggestion = scenario_with_suggestion(action, hook)
    open_patient(page, base, scenario)
    before = page.locator("#draft-list li.draft-item").count()
    fire = "Open chart (patient-view)" if hook == "patient-view" else "Check draft orders"
    page.get_by_role("button", name=re.compile(re.escape(fire))).click()
    shown = page.locator("article.card", has_text=card["summary"])
    expect(shown).to_be_visible()
    labels = page.locator("article.card .indicator").all_inner_texts()
    ranks = [["critical", "warning", "info"].index(label.strip().lower()) for label in labels]
    assert ranks == sorted(ranks), "critical cards first, then warning, then info"
    shown.get_by_role("button", name=re.compile(re.escape(suggestion["label"]))).click()
    changed = page.locator("#draft-list .badge", has_text=badge)
    created = sum(1 for a in suggestion["actions"] if a["type"] == "create")
    expect(changed).to_have_count(created or 1)
    expect(page.locator("#draft-list li.draft-item")).to_have_count(before + created)
    shot(page, f"suggestion-{action}")


def test_composed_order_is_checked_and_override_is_stored(
    served: tuple[str, Flask], page: Page
) -> None:
    base, app = served
    scenario, _ = scenario_with_delete_suggestion()
    open_patient(page, base, scenario)
    page.get_by_label("Drug", exact=True).select_option(label="lorazepam")
    page.get_by_label("Dose", exact=True).fill("1")
    page.get_by_label("Frequency", exact=True).select_option(label="twice daily")
    page.get_by_label("Route", exact=True).select_option(label="oral")
    page.get_by_label("Duration (days)", exact=True).fill("7")
    page.get_by_role("button", name="Add to draft and check (order-select)").click()
    expect(page.locator("#draft-list")).to_contain_text(
        "lorazepam: 1 mg oral twice daily for 7 days · supply 7 days"
    )

    card = page.locator("article.card", has_text="lorazepam")
    expect(card).to_be_visible()
    card.locator("summary", has_text="Override").click()
    reason = card.get_by_label("Override reason")
    reason.select_option(index=1)
    chosen = reason.locator("option:checked").inner_text()
    card.get_by_label("Comment (optional)").fill("short course agreed with the patient")
    card.get_by_role("button", name="Override card").click()
    expect(card.locator(".card-status")).to_contain_text(f"Overridden ({chosen}). Feedback stored.")
    page.locator("#raw-feedback summary").click()
    expect(page.locator("#feedback-json")).to_contain_text("short course agreed with the patient")
    shot(page, "override")

    recommendation = card.get_attribute("data-recommendation")
    assert recommendation, "the card names its recommendation"
    rows = stored(app, recommendation)
    assert sum(row.get("overridden") or 0 for row in rows) >= 1
    reasons = [r.get("display") for row in rows for r in row.get("topoverridereasons") or []]
    assert chosen in reasons

    page.get_by_role("link", name="Governance report").click()
    panel = page.get_by_role("region", name=f"Recommendation {recommendation}")
    expect(panel).to_be_visible()
    expect(panel.locator("svg circle")).not_to_have_count(0)
    expect(panel.locator("table")).to_contain_text(chosen)
    shot(page, "governance-report")


def test_trend_charts_mark_the_upper_limit(served: tuple[str, Flask], page: Page) -> None:
    base, _ = served
    page.goto(f"{base}/console/")
    expect(page.get_by_role("row", name=re.compile("Dora Trend"))).to_contain_text("CK 900 U/L")
    shot(page, "patients")
    open_patient(page, base, "console-dm-trend")
    chart = page.locator("#ck-chart svg")
    expect(chart.locator("circle")).to_have_count(len(CK_VALUES))
    expect(chart.locator("circle.above")).to_have_count(len(CK_VALUES))
    expect(chart.locator("line.threshold")).to_have_count(1)
    expect(chart.locator(".threshold-label")).to_contain_text("upper limit of normal 200 U/L")
    expect(page.locator("#weight-chart svg circle")).to_have_count(3)
    expect(page.locator("#patient-summary")).to_contain_text("CK 900 U/L")
    shot(page, "trends")


def test_patient_view_by_keyboard_shows_cards_and_raw_json(
    served: tuple[str, Flask], page: Page
) -> None:
    base, _ = served
    open_patient(page, base, "console-dm-trend")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "fire-patient-view":
            break
    assert page.evaluate("document.activeElement.id") == "fire-patient-view"
    page.keyboard.press("Enter")
    expect(page.locator("#call-status")).to_contain_text("myopathy-patient-view answered")
    page.locator("#raw-response summary").click()
    expect(page.locator("#response-json")).to_contain_text("HTTP 200")
    count = int(re.search(r"answered (\d+) card", page.locator("#call-status").inner_text())[1])
    expect(page.locator("article.card")).to_have_count(count)
    page.locator("#raw-request summary").click()
    expect(page.locator("#request-json")).to_contain_text('"hook": "patient-view"')
    shot(page, "patient-view")


def test_markdown_detail_is_rendered_safely(served: tuple[str, Flask], page: Page) -> None:
    base, _ = served
    open_patient(page, base, "console-dm-trend")
    result = page.evaluate(
        """() => {
        const box = document.createElement("div");
        Markdown.render("**Dose** <img src=x onerror=alert(1)> [bad](javascript:alert(1)) " +
            "[ok](https://example.org)\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |" +
            "\\n\\n- one\\n- two\\n\\n_Local: `a_b` = 1._ snake_case_word", box);
        return {
            img: box.querySelectorAll("img").length,
            strong: box.querySelector("strong").textContent,
            links: Array.from(box.querySelectorAll("a")).map(a => a.getAttribute("href")),
            cells: box.querySelectorAll("td").length,
            items: box.querySelectorAll("li").length,
            text: box.textContent,
            em: Array.from(box.querySelectorAll("em")).map(e => e.innerHTML),
        };
    }"""
    )
    assert result["img"] == 0
    assert "<img src=x onerror=alert(1)>" in result["text"]
    assert result["strong"] == "Dose"
    assert result["links"] == ["https://example.org"]
    assert result["cells"] == 2 and result["items"] == 2
    assert result["em"] == ["Local: <code>a_b</code> = 1."]
    assert "snake_case_word" in result["text"]


A11Y_AUDIT = """() => {
    const lum = (rgb) => {
        const [r, g, b] = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const background = (node) => {
        for (let n = node; n; n = n.parentElement) {
            const bg = getComputedStyle(n).backgroundColor;
            if (bg && !bg.startsWith("rgba(0, 0, 0, 0)") && bg !== "transparent") { return bg; }
        }
        return "rgb(255, 255, 255)";
    };
    const ratio = (node) => {
        const a = lum(getComputedStyle(node).color), b = lum(background(node));
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    };
    const unlabeled = Array.from(document.querySelectorAll("input, select, textarea, button"))
        .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
            && !c.textContent.trim())
        .map((c) => c.outerHTML.slice(0, 80));
    const texts = Array.from(document.querySelectorAll(
        "h1, h2, h3, p, li, label, summary, button, a, .indicator, .rec-id, td, th, span"))
        .filter((n) => n.offsetParent !== null && n.textContent.trim());
    const low = texts.filter((n) => ratio(n) < 4.5)
        .map((n) => n.tagName + "." + n.className + " " + ratio(n).toFixed(2) + " "
            + n.textContent.trim().slice(0, 30));
    return { unlabeled, low, checked: texts.length };
}"""


def test_controls_are_labelled_contrast_is_aa_and_focus_is_visible(
    served: tuple[str, Flask], page: Page
) -> None:
    base, _ = served
    scenario, card = scenario_with_delete_suggestion()
    open_patient(page, base, scenario)
    page.get_by_role("button", name="Check draft orders (order-select)").click()
    shown = page.locator("article.card", has_text=card["summary"])
    shown.locator("summary", has_text="Override").click()
    expect(shown.get_by_label("Override reason")).to_be_visible()
    audit = page.evaluate(A11Y_AUDIT)
    assert audit["checked"] > 30
    assert audit["unlabeled"] == []
    assert audit["low"] == [], "text below WCAG AA contrast (4.5:1)"
    open_patient(page, base, scenario)
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.className, s.outlineStyle, s.outlineWidth]; })()"
    )
    assert focused == ["skip-link", "solid", "3px"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for path in ("/console/", "/console/report"):
        page.goto(base + path)
        page.wait_for_load_state("load")
        audit = page.evaluate(A11Y_AUDIT)
        assert audit["unlabeled"] == [] and audit["low"] == [], path


@pytest.fixture(scope="module")
def silent_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """The console with CAU-2 in silent rollout, on a free loopback port."""
    root = tmp_path_factory.mktemp("console-governance")
    policy = root / "site-policy.json"
    policy.write_text('{"rollout": {"CAU-2": "silent", "REF-1": "off"}}')
    app = console_app(root, SITE_POLICY_FILE=str(policy))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_the_governance_page_counts_silent_cards(
    silent_served: tuple[str, Flask], page: Page
) -> None:
    base, app = silent_served
    scenario = load_scenario(FIXTURES / "cau-2-fires")
    client = app.test_client()
    for _ in range(2):
        body = build_request(scenario, app.extensions["cds_registry"])
        response = client.post(f"/cds-services/{scenario.service_id}", json=body)
        assert response.get_json()["cards"] == []  # CAU-2 is silent: nothing shown
    assert app.extensions["cds_store"].flush()
    page.goto(f"{base}/console/report")
    expect(page.locator("#rollout-modes")).to_contain_text("CAU-2 silent")
    expect(page.locator("#rollout-modes")).to_contain_text("REF-1 off")
    panel = page.get_by_role("region", name="Recommendation CAU-2")
    expect(panel).to_be_visible()
    expect(panel.locator(".rollout")).to_have_text("Rollout: silent")
    cells = panel.locator("tbody tr").first.locator("td")
    # Period, shown, patients, would have fired, patients (silent), accepted, overridden.
    expect(cells.nth(1)).to_have_text("0")
    expect(cells.nth(3)).to_have_text("2")
    expect(cells.nth(4)).to_have_text("1")
    shot(page, "governance-silent")
