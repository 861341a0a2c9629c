"""End to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright's Python API) against
the app over real HTTP (uvicorn on a free loopback port in a thread).

A township worker signs in, filters the list, opens a household, records the home visit (first with a
missing field: the Chinese message appears next to it and the typed findings survive), proposes
assistance; a supervisor signs in, approves and closes; a worker of another township gets a 404. Screenshots
of the list, the household page and the dashboard are saved under ``test-output/`` (look at them).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import test_cases_fixtures as cf
import test_serving_fixtures as fx

from doudi.policy import load_policy
from doudi.settings import Settings
from serving.app import create_app
from serving.casework import TransitionRequest, transition
from serving.db import make_engine, session_factory
from serving.orm import Alert, CaseEvent, User
from serving.websession import principal_of

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("DOUDI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app over HTTP on a copy of the scored database; four of the township's open alerts assigned to
    worker sun by supervisor li (as the morning's dispatch would)."""
    import uvicorn

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    folder = tmp_path_factory.mktemp("browser")
    engine = make_engine(cf.fresh_copy(folder))
    sessions = session_factory(engine)
    with sessions() as session:
        li = principal_of(session.scalar(sa.select(User).where(User.name == "li")))
        picked = list(
            session.scalars(
                sa.select(Alert)
                .where(Alert.township_code == cf.TOWNSHIP, Alert.status == "new")
                .order_by(Alert.risk.desc())
                .limit(4)
            )
        )
    for alert in picked:
        transition(
            sessions,
            li,
            alert.id,
            TransitionRequest(action="assign", expected_version=alert.version, assignee="sun"),
            limits=load_policy().casework,
        )
    app = create_app(
        Settings(data_dir=folder), model=fx.serving_model(tiers=cf.stored().tiers), engine=engine
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "sessions": sessions, "assigned": picked}
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def sign_in(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", cf.PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(re.compile(r".*/alerts.*"))


def sign_out(page) -> None:
    page.click("header form[action='/logout'] button")
    page.wait_for_url(re.compile(r".*/login.*"))


def test_worker_and_supervisor_work_a_case_in_the_browser(site, browser):
    OUTPUT.mkdir(exist_ok=True)
    base = site["url"]
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    # Unsigned: sent to the sign-in page; then the worker's list.
    page.goto(f"{base}/alerts")
    assert "/login" in page.url and page.locator("h1").inner_text() == "登录"
    sign_in(page, base, "sun")
    assert page.locator("h1").inner_text() == "预警名单"
    cookie = next(c for c in context.cookies() if c["name"] == "doudi_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    rows = page.locator("table.alerts tbody tr")
    assert rows.count() > 4
    assert all(
        code.startswith(cf.TOWNSHIP)
        for code in re.findall(r"\b5\d{11}\b", page.locator("table.alerts").inner_text())
    )
    page.screenshot(path=str(OUTPUT / "alerts.png"), full_page=True)

    # Filter: my cases only, then one tier.
    page.check("input[name=mine]")
    page.click("form.filters button.primary")
    page.wait_for_url(re.compile(r".*mine=1.*"))
    mine = {a.household_id for a in site["assigned"]}
    shown = set(page.locator("table.alerts a.household").all_inner_texts())
    assert shown == mine
    tier = site["assigned"][0].tier
    page.select_option("#f-tier", tier)
    page.click("form.filters button.primary")
    page.wait_for_url(re.compile(rf".*tier={tier}.*"))
    badges = set(page.locator("table.alerts tbody .tier").all_inner_texts())
    assert badges == {{"red": "红色预警", "orange": "橙色预警", "yellow": "黄色预警"}[tier]}

    # Open the household; the visit form first without an outcome: message next to the field, text kept.
    household = site["assigned"][0].household_id
    page.click(f"table.alerts a.household:text-is('{household}')")
    page.wait_for_url(re.compile(rf".*/households/{household}.*"))
    assert page.locator("h1").inner_text().startswith(f"户 {household}")
    findings = "入户核实：户主3月起停工，配偶住院，家中无存款。"
    page.fill("#verify-findings", findings)
    page.click("#form-verify button.primary")
    error = page.locator("#form-verify .field-error").first
    assert error.inner_text() == "⚠ 此项必须填写。" or error.inner_text() == "此项必须填写。"
    assert page.input_value("#verify-findings") == findings
    page.check("#form-verify input[value=confirmed_hardship]")
    page.click("#form-verify button.primary")
    page.wait_for_url(re.compile(r".*done=verify.*"))
    assert "核实结果已保存" in page.locator(".flash.ok").inner_text()
    assert "确认存在困难" in page.locator(".case-state").inner_text()

    # Propose assistance (the form is pre-filled from the recommendation where there is one).
    page.select_option("#propose-programme", "dibao")
    page.fill("#propose-amount", "450")
    page.click("#form-propose button.primary")
    page.wait_for_url(re.compile(r".*done=propose.*"))
    assert "待审批" in page.locator(".case-state").inner_text()
    assert page.locator("#form-approve").count() == 0  # a worker cannot approve
    page.screenshot(path=str(OUTPUT / "household.png"), full_page=True)
    sign_out(page)

    # The supervisor approves and closes.
    sign_in(page, base, "li")
    page.goto(f"{base}/households/{household}")
    page.fill("#approve-note", "材料齐全，同意纳入低保。")
    page.click("#form-approve button.primary")
    page.wait_for_url(re.compile(r".*done=approve.*"))
    assert "已批准" in page.locator(".case-state").inner_text()
    page.select_option("#close-reason", "resolved")
    page.click("#form-close button")
    page.wait_for_url(re.compile(r".*done=close.*"))
    assert "已结案" in page.locator(".case-state").inner_text()
    timeline = page.locator("ol.timeline").inner_text()
    for word in ("分派", "记录入户核实", "提出救助建议", "批准", "结案", "材料齐全"):
        assert word in timeline
    page.goto(f"{base}/dashboard")
    assert page.locator("h1").inner_text() == "督办看板"
    page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
    sign_out(page)

    # A worker of another township cannot open it: the same 404 as a household that does not exist.
    sign_in(page, base, "zhao")
    response = page.goto(f"{base}/households/{household}")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "未找到该户"
    assert household not in page.content().replace(f"/households/{household}", "")
    context.close()

    with site["sessions"]() as session:
        alert = session.scalar(
            sa.select(Alert).where(Alert.household_id == household, Alert.status == "closed")
        )
    assert (
        alert is not None
        and alert.close_reason == "resolved"
        and alert.verification_outcome == "confirmed_hardship"
    )


def test_two_supervisors_on_one_case_the_second_sees_a_conflict(site, browser):
    OUTPUT.mkdir(exist_ok=True)
    base = site["url"]
    with site["sessions"]() as session:
        alert = session.scalar(
            sa.select(Alert)
            .where(Alert.township_code == cf.OTHER_TOWNSHIP, Alert.status == "new")
            .order_by(Alert.risk.desc())
            .limit(1)
        )
    pages = []
    for name in ("li", "zhou"):
        context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page = context.new_page()
        sign_in(page, base, name)
        page.goto(f"{base}/households/{alert.household_id}")
        pages.append(page)
    first, second = pages
    first.select_option("#assign-assignee", "zhao")
    first.click("#form-assign button.primary")
    first.wait_for_url(re.compile(r".*done=assign.*"))
    second.select_option("#assign-assignee", "zhao")
    second.fill("#assign-note", "请本周内上门")
    second.click("#form-assign button.primary")
    second.wait_for_load_state()
    assert "其他人更新过" in second.locator(".flash.warn").inner_text()
    assert "请本周内上门" in second.locator(".unsaved").inner_text()
    assert "待核实" in second.locator(".case-state").inner_text()
    second.screenshot(path=str(OUTPUT / "conflict.png"), full_page=False)
    with site["sessions"]() as session:
        events = session.scalar(
            sa.select(sa.func.count()).select_from(CaseEvent).where(CaseEvent.alert_id == alert.id)
        )
    assert events == 1
    for page in pages:
        page.context.close()
