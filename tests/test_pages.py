"""The pages with a real app (``with TestClient(app)``): sign-in, sessions and CSRF, language switch, the
list's filters, household page scope and de-identification, forms that keep what was typed, conflicts,
the dashboard's bulk reassignment, the audit log and the audited identity reveal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import test_cases_fixtures as cf

from serving import i18n
from serving.db import make_engine, session_factory, transaction
from serving.orm import Alert, AuditLog, HouseholdProfile, User, WebSession
from serving.pages import SESSION_COOKIE
from serving.websession import PageSettings, sign, unsign, verify_password

TEMPLATES = Path(__file__).resolve().parent.parent / "serving" / "templates"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef]")


@pytest.fixture
def site(tmp_path):
    yield from cf.served(tmp_path)


def login_token(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client, name: str, password: str = cf.PASSWORD):
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": login_token(client), "next": "/alerts"},
        follow_redirects=False,
    )


def csrf(client, path: str = "/alerts") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def first_alert(sessions, prefix: str, status: str = "new") -> Alert:
    with sessions() as session:
        return session.scalar(
            sa.select(Alert)
            .where(Alert.village_code.startswith(prefix), Alert.status == status)
            .order_by(Alert.risk.desc())
            .limit(1)
        )


def post_action(client, url: str, token: str, target: Alert, action: str, *, version: int | None = None,
                **fields):
    """Submit one case action from the household page's forms (the case's version unless given)."""
    data = {"csrf_token": token, "action": action, "alert_id": target.id,
            "expected_version": target.version if version is None else version, **fields}
    return client.post(f"{url}/actions", data=data, follow_redirects=False)


def audit(sessions, action: str) -> list[AuditLog]:
    with sessions() as session:
        return list(
            session.scalars(sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        )


def test_templates_hold_no_words_and_every_key_exists():
    used = set()
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not CJK.search(text), f"{path.name} has Chinese text outside the catalogue"
        used |= {k for k in re.findall(r"t\('([a-z_]+\.[a-z_.]+)'", text) if not k.endswith(".")}
    assert used, "no catalogue keys found in the templates"
    for lang in i18n.LANGS:
        missing = {key for key in used if not i18n.has(lang, key)}
        assert not missing, (lang, missing)
    assert set(i18n.catalogue("zh")) == set(i18n.catalogue("en"))
    for key, text in i18n.catalogue("zh").items():  # same placeholders in both languages
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", i18n.catalogue("en")[key])), (
            key
        )


def test_sign_in_session_cookie_and_sign_out(site):
    client, sessions = site
    assert client.get("/alerts", follow_redirects=False).headers["location"].startswith("/login?next=")
    no_csrf = client.post("/login", data={"name": "wang", "password": cf.PASSWORD})
    assert no_csrf.status_code == 400 and "登录页面已过期" in no_csrf.text
    wrong = sign_in(client, "wang", "not the password")
    assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
    assert 'value="wang"' in wrong.text  # the name typed is kept
    ok = sign_in(client, "wang")
    assert ok.status_code == 303 and ok.headers["location"] == "/alerts"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie
    assert client.get("/alerts").status_code == 200
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/alerts", follow_redirects=False).status_code == 303  # tampered signature
    client.cookies.set(SESSION_COOKIE, value)
    token = csrf(client)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, value)  # the old cookie no longer opens a session
    assert client.get("/alerts", follow_redirects=False).status_code == 303
    assert [a.outcome for a in audit(sessions, "sign_in")] == ["failed", "ok"]
    with sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(WebSession)) == 0


def test_expired_sessions_platform_accounts_and_lockout(site):
    client, sessions = site
    sign_in(client, "wang")
    with transaction(sessions) as session:
        session.execute(sa.update(WebSession).values(expires_at=sa.func.current_timestamp()))
    assert client.get("/alerts", follow_redirects=False).status_code == 303
    assert sign_in(client, "platform").status_code == 401  # machine accounts do not use the pages
    for _ in range(5):
        assert sign_in(client, "sun", "wrong password!").status_code == 401
    locked = sign_in(client, "sun")  # right password, but locked for 15 minutes
    assert locked.status_code == 401 and "15" in locked.text
    assert audit(sessions, "sign_in")[-1].outcome == "locked"


def test_next_is_never_an_open_redirect(site):
    client, _ = site
    for target in ("//evil.example/x", "https://evil.example", "/\\evil"):
        response = client.post(
            "/login",
            data={"name": "wang", "password": cf.PASSWORD, "next": target, "csrf_token": login_token(client)},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/alerts"
        client.cookies.clear()


def test_passwords_and_signatures():
    with session_factory(make_engine(f"sqlite:///{cf.stored().path}"))() as session:
        stored = session.scalar(sa.select(User.password_hash).where(User.name == "wang"))
    assert stored.startswith("scrypt$") and cf.PASSWORD not in stored
    assert verify_password(stored, cf.PASSWORD) and not verify_password(stored, cf.PASSWORD + "x")
    assert not verify_password(None, "") and not verify_password("md5$abc", "abc")
    key = PageSettings(session_secret="k" * 32).key()
    assert unsign(sign("abc", key), key) == "abc" and unsign(sign("abc", key), b"other") is None
    assert unsign("abc", key) is None and unsign(None, key) is None


def test_language_switch_is_remembered(site):
    client, _ = site
    sign_in(client, "wang")
    assert "预警名单" in client.get("/alerts").text
    english = client.get("/alerts?lang=en")
    assert "Alerts" in english.text and "预警名单" not in english.text and "lang=zh" in english.text
    assert "Open (all)" in client.get("/alerts").text  # the cookie keeps English
    assert "预警名单" in client.get("/alerts?lang=zh").text


def test_list_is_scoped_filtered_searched_and_paged(site):
    client, sessions = site
    sign_in(client, "li")
    with sessions() as session:
        county_open = session.scalar(
            sa.select(sa.func.count())
            .select_from(Alert)
            .where(Alert.village_code.startswith(cf.COUNTY), Alert.status.not_in(("closed", "superseded")))
        )
        red = session.scalar(
            sa.select(sa.func.count())
            .select_from(Alert)
            .where(
                Alert.village_code.startswith(cf.COUNTY),
                Alert.tier == "red",
                Alert.status.not_in(("closed", "superseded")),
            )
        )
        outside = session.scalar(
            sa.select(Alert.household_id).where(~Alert.village_code.startswith(cf.COUNTY))
        )
    page = client.get("/alerts")
    assert f"共 {county_open} 条" in page.text
    assert outside not in page.text
    red_page = client.get("/alerts?tier=red")
    assert (
        red_page.text.count('class="tier tier-red"') == red
        and "tier-orange" not in red_page.text.split("<tbody>")[1]
    )
    target = first_alert(sessions, cf.TOWNSHIP)
    found = client.get(f"/alerts?q={target.household_id[-3:]}")
    assert target.household_id in found.text
    village = client.get(f"/alerts?village={target.village_code}")
    codes = set(re.findall(r'muted small"> ?(5\d{11})', village.text))
    assert codes == {target.village_code}
    pages = client.get("/alerts?status=all&page=2")
    assert pages.status_code == 200 and "第 26–" in pages.text
    export = client.get("/alerts.csv?tier=red")
    assert export.status_code == 200 and export.text.startswith("\ufeff排序")
    assert len(export.text.strip().splitlines()) == red + 1 and outside not in export.text
    assert audit(sessions, "export_alerts")[-1].detail["rows"] == red


def test_household_page_is_de_identified_and_scoped(site):
    client, sessions = site
    target = first_alert(sessions, "530102001001")
    with transaction(sessions) as session:
        profile = session.get(HouseholdProfile, target.household_id)
        summary = dict(profile.summary)
        summary["adults"] = [{**a, "id_last4": "4321"} for a in summary["adults"]]
        profile.summary = summary
        profile.identities = [
            {"relation": "head", "age_band": "45-59", "id_hash": "f" * 64, "id_last4": "4321"}
        ]
    sign_in(client, "zhao")
    missing = client.get("/households/NO-SUCH-HOUSEHOLD")
    hidden = client.get(f"/households/{target.household_id}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(target.household_id, "X") == missing.text.replace("NO-SUCH-HOUSEHOLD", "X")
    assert audit(sessions, "view_household")[-1].outcome == "not_found"
    client.cookies.clear()
    sign_in(client, "wang")
    page = client.get(f"/households/{target.household_id}")
    assert page.status_code == 200
    assert "****4321" in page.text and "f" * 64 not in page.text  # last 4 at most; never the pseudonym
    assert "为保护未成年人" in page.text or summary["minors"] == 0
    assert "<svg" in page.text and "风险变化" in page.text
    for reason in target.reasons:
        assert reason["zh"] in page.text
    row = audit(sessions, "view_household")[-1]
    assert (row.user_name, row.household_id, row.outcome) == ("wang", target.household_id, "ok")


def test_a_form_with_problems_keeps_what_was_typed(site):
    client, sessions = site
    target = first_alert(sessions, "530102001001")
    sign_in(client, "wang")
    url = f"/households/{target.household_id}"
    token = csrf(client, url)
    claimed = post_action(client, url, token, target, "assign", assignee="wang")
    assert claimed.status_code == 303
    findings = "户主三月起停工 <script>alert(1)</script>"
    bad = post_action(client, url, token, target, "verify", version=target.version + 1, findings=findings,
                      note="第一次上门")
    assert bad.status_code == 422
    form = bad.text.split('id="form-verify"')[1].split("</form>")[0]
    assert "此项必须填写。" in form
    assert "户主三月起停工 &lt;script&gt;" in form and "<script>alert(1)" not in bad.text  # kept, escaped
    assert "第一次上门" in form
    forged = post_action(client, url, "forged", target, "verify", version=target.version + 1, outcome="moved",
                         findings="已经搬走了")
    assert forged.status_code == 403 and "页面已过期" in forged.text
    with sessions() as session:
        assert session.get(Alert, target.id).status == "assigned"


def test_proposal_fields_are_checked_next_to_each_field(site):
    client, sessions = site
    target = first_alert(sessions, "530102001001")
    sign_in(client, "wang")
    url = f"/households/{target.household_id}"
    token = csrf(client, url)
    version = target.version
    for action, fields in (
        ("assign", {"assignee": "wang"}),
        ("verify", {"outcome": "confirmed_hardship", "findings": "确认困难属实"}),
    ):
        response = post_action(client, url, token, target, action, version=version, **fields)
        assert response.status_code == 303, response.text
        version += 1
    bad = post_action(client, url, token, target, "propose", version=version, programme="dibao",
                      amount="四百", start_date="2025-13-01")
    assert bad.status_code == 422
    form = bad.text.split('id="form-propose"')[1].split("</form>")[0]
    assert "请输入数字" in form and "日期格式不正确" in form and 'value="四百"' in form
    low = post_action(client, url, token, target, "propose", version=version, programme="dibao", amount="0",
                      start_date="2024-01-01")
    form = low.text.split('id="form-propose"')[1].split("</form>")[0]
    assert low.status_code == 422 and "金额应大于 0" in form and "开始日期应在" in form


def test_a_second_person_gets_a_conflict_and_nothing_is_overwritten(site):
    client, sessions = site
    target = first_alert(sessions, "530102001001")
    sign_in(client, "li")
    url = f"/households/{target.household_id}"
    token = csrf(client, url)
    first = post_action(client, url, token, target, "assign", assignee="wang")
    assert first.status_code == 303
    second = post_action(client, url, token, target, "assign", assignee="sun", note="我来负责")
    assert second.status_code == 409
    assert "其他人更新过" in second.text
    unsaved = second.text.split('class="unsaved"')[1].split("</div>")[0]  # what was typed is shown again
    assert "我来负责" in unsaved and "sun" in unsaved
    with sessions() as session:
        assert session.get(Alert, target.id).assignee_id == session.scalar(
            sa.select(User.id).where(User.name == "wang")
        )


def test_dashboard_bulk_reassignment(site):
    client, sessions = site
    sign_in(client, "wang")
    assert client.get("/dashboard").status_code == 403
    client.cookies.clear()
    sign_in(client, "li")
    page = client.get("/dashboard")
    assert page.status_code == 200 and cf.TOWNSHIP in page.text and "<svg" in page.text
    picks = re.findall(r'name="case" value="(\d+:\d+)"', page.text)
    with sessions() as session:
        township = {
            f"{a.id}:{a.version}"
            for a in session.scalars(
                sa.select(Alert).where(Alert.township_code == cf.TOWNSHIP, Alert.status == "new")
            )
        }
    chosen = [p for p in picks if p in township][:3]
    token = csrf(client, "/dashboard")
    empty = client.post("/dashboard/reassign", data={"csrf_token": token, "assignee": "sun"})
    assert empty.status_code == 422 and "请至少勾选一户" in empty.text
    stale = chosen[0].split(":")[0] + ":99"
    done = client.post(
        "/dashboard/reassign",
        data={"csrf_token": token, "assignee": "sun", "case": [*chosen, stale]},
        follow_redirects=False,
    )
    assert (
        done.status_code == 303
        and "moved=3" in done.headers["location"]
        and "conflicts=1" in done.headers["location"]
    )
    assert "已分派 3 户" in client.get(done.headers["location"]).text
    with sessions() as session:
        sun = session.scalar(sa.select(User.id).where(User.name == "sun"))
        ids = [int(p.split(":")[0]) for p in chosen]
        assert {a.assignee_id for a in session.scalars(sa.select(Alert).where(Alert.id.in_(ids)))} == {sun}


def test_audit_log_and_identity_reveal(site):
    client, sessions = site
    target = first_alert(sessions, "530102001001")
    with transaction(sessions) as session:
        session.get(HouseholdProfile, target.household_id).identities = [
            {"relation": "head", "age_band": "45-59", "id_hash": "a" * 64, "id_last4": "1234"}
        ]
    sign_in(client, "li")
    assert client.get("/audit").status_code == 403
    token = csrf(client, f"/households/{target.household_id}")
    denied = client.post(
        f"/households/{target.household_id}/reveal", data={"csrf_token": token, "reason": "想看看"}
    )
    assert denied.status_code == 403 and "a" * 64 not in denied.text
    assert audit(sessions, "reveal_identity")[-1].outcome == "denied"
    client.cookies.clear()
    sign_in(client, "admin")
    url = f"/households/{target.household_id}"
    token = csrf(client, url)
    short = client.post(f"{url}/reveal", data={"csrf_token": token, "reason": "查"})
    assert short.status_code == 422 and "请至少填写 4 个字" in short.text and "a" * 64 not in short.text
    shown = client.post(f"{url}/reveal", data={"csrf_token": token, "reason": "民政系统核对户籍信息"})
    assert shown.status_code == 200 and "a" * 64 in shown.text
    row = audit(sessions, "reveal_identity")[-1]
    assert (row.outcome, row.reason, row.user_name) == ("ok", "民政系统核对户籍信息", "admin")
    log = client.get(f"/audit?household={target.household_id}&action=reveal_identity")
    assert log.status_code == 200 and "民政系统核对户籍信息" in log.text and "共 2 条" in log.text
    assert client.get("/audit?since=2025-99-01").status_code == 422
