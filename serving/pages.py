"""The social workers' pages, served by doudi itself: Jinja2 templates, plain CSS, a little vanilla JS and
server-rendered SVG charts, all shipped in the package (``serving/templates``, ``serving/static``).

Pages (Chinese by default; ``?lang=en`` or the language link switches and remembers it in a cookie):
  /login, /logout            sign-in with the scoring service's users (``serving.websession``)
  /alerts                    my alert list: filters, search, pagination, counts, CSV export (/alerts.csv)
  /households/{id}           de-identified summary, risk trend, reasons, triggers, assistance, case actions
                             and timeline; POST .../actions (case actions), POST .../reveal (admin)
  /dashboard                 supervisor: townships x status, overdue, runs, caseloads, bulk reassignment
  /audit                     admin: the audit log, filterable

Routes are thin: they read the form, call ``serving.casework`` / ``serving.worklists`` / ``serving.store``
with the signed-in user's principal (so region scope is applied by the data-access layer, exactly as for
the API), and render. A form that fails validation is rendered again with what was typed and the
problem next to each field.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import secrets
import zoneinfo
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from doudi.contract import PROGRAMMES
from serving import caseapi, casework, charts, i18n, store, worklists
from serving import websession as web
from serving.auth import Permission, Principal, Role
from serving.db import transaction
from serving.deps import AppState
from serving.errors import Conflict, DoudiError, Forbidden, InvalidInput, NotFound
from serving.orm import TIERS, Alert, AuditLog, User, utcnow
from serving.profiles import get_profile

SESSION_COOKIE = "doudi_session"
LANG_COOKIE = "doudi_lang"
LOGIN_CSRF_COOKIE = "doudi_login_csrf"
PACKAGE = Path(str(resources.files("serving")))
TEMPLATES = Jinja2Templates(directory=str(PACKAGE / "templates"))
TIMEZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
"""Times are stored in UTC and shown in China Standard Time."""
FORM_FIELDS = ("note", "assignee", "outcome", "findings", "programme", "amount", "start_date", "close_reason")
MAX_EXPORT = 5000
BULK_ROWS = 50
"""Open cases listed for bulk reassignment at once (filter by township or worker for others)."""
ACTIVE_NAV = {
    "alerts.html": "alerts",
    "household.html": "alerts",
    "dashboard.html": "dashboard",
    "audit.html": "audit",
}
MIN_REASON = 4
ASSISTANCE_PROGRAMME = {"single_person": "dibao"}
SHARE_FIGURES = frozenset({"medical_trigger_share", "medical_trigger_share_other", "medical_assistance_share",
                           "disaster_loss_income_share", "income_drop_trigger_share"})
"""Policy figures that are shares (features say so by their unit: ``share`` or ``ratio``)."""
RECURRING = ("dibao", "tekun", "edge")
"""Programmes paid monthly (their amount is per month); the others are one-off totals."""
"""Recommended programme -> the contract programme a proposal enrols in (单人户 is dibao for one person)."""


# --- formatting helpers (template filters) -------------------------------------------------------------


def local_time(value: dt.datetime | None) -> str:
    """``2026-11-29 16:05`` in China Standard Time (empty for None)."""
    return "" if value is None else value.astimezone(TIMEZONE).strftime("%Y-%m-%d %H:%M")


def local_date(value: dt.datetime | dt.date | None) -> str:
    """``2026-11-29`` (a datetime in China Standard Time)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(TIMEZONE).date()
    return value.isoformat()


def percent(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def number(value: Any) -> str:
    """A figure as a person reads it: thousands separators, at most 2 decimals, yes/no for booleans."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"
    return str(value)


TEMPLATES.env.filters.update(local_time=local_time, local_date=local_date, percent=percent, number=number)


# --- request context ----------------------------------------------------------------------------------


@dataclass
class Page:
    """What every page handler needs: the request, language, signed-in user and their session."""

    request: Request
    state: AppState
    settings: web.PageSettings
    lang: str
    principal: Principal | None = None
    csrf: str = ""
    set_lang: bool = False
    flash: list[tuple[str, str]] = field(default_factory=list)

    def t(self, key: str, /, **params: Any) -> str:
        return i18n.message(self.lang, key, **params)

    def audit(self, action: str, **kwargs: Any) -> None:
        assert self.principal is not None
        with transaction(self.state.sessions) as session:
            store.audit(
                session, self.principal, action, request_path=str(self.request.url.path)[:500], **kwargs
            )


def _page(request: Request) -> Page:
    state: AppState = request.app.state.doudi
    settings: web.PageSettings = request.app.state.pages
    query_lang = request.query_params.get("lang")
    lang = i18n.pick_lang(query_lang, request.cookies.get(LANG_COOKIE))
    page = Page(request=request, state=state, settings=settings, lang=lang, set_lang=query_lang in i18n.LANGS)
    secret = web.unsign(request.cookies.get(SESSION_COOKIE), settings.key())
    if secret:
        with state.sessions() as session:
            found = web.resolve(session, secret)
        if found is not None:
            page.principal, row = found
            page.csrf = row.csrf_token
    return page


def _lang_url(request: Request, lang: str) -> str:
    params = dict(request.query_params)
    params["lang"] = lang
    return f"{request.url.path}?{urlencode(params)}"


def _render(page: Page, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal = page.principal
    nav = []
    if principal is not None:
        nav.append(("alerts", "/alerts"))
        if principal.role in (Role.SUPERVISOR, Role.ADMIN):
            nav.append(("dashboard", "/dashboard"))
        if principal.role is Role.ADMIN:
            nav.append(("audit", "/audit"))
    other = "en" if page.lang == "zh" else "zh"
    response = TEMPLATES.TemplateResponse(
        page.request,
        template,
        {
            "t": page.t,
            "lang": page.lang,
            "user": principal,
            "csrf": page.csrf,
            "nav": nav,
            "other_lang": other,
            "other_lang_url": _lang_url(page.request, other),
            "flash": page.flash,
            "tiers": [t for t in reversed(TIERS)],
            "has": lambda key: i18n.has(page.lang, key),
            "active": ACTIVE_NAV.get(template),
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    if page.set_lang:
        response.set_cookie(
            LANG_COOKIE,
            page.lang,
            max_age=365 * 86400,
            samesite="lax",
            httponly=True,
            secure=page.settings.cookie_secure,
        )
    return response


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _error_page(page: Page, status_code: int, key: str) -> HTMLResponse:
    return _render(
        page,
        "error.html",
        status_code,
        title=page.t(f"errorpage.{key}.title"),
        text=page.t(f"errorpage.{key}.text"),
    )


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``https://...``) may follow sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/alerts"


def _csrf_ok(page: Page, form: Any) -> bool:
    sent = str(form.get("csrf_token") or "")
    return bool(page.csrf) and secrets.compare_digest(sent.encode(), page.csrf.encode())


def _checked(value: str | None) -> bool:
    return value in ("1", "on", "true", "yes")


# --- routes ----------------------------------------------------------------------------------------------


def build_router() -> APIRouter:
    """The pages' routes (not in the OpenAPI schema)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def get_root(request: Request) -> Response:
        page = _page(request)
        return RedirectResponse("/alerts" if page.principal else "/login", status_code=303)

    @router.get("/login")
    def get_login(request: Request, next: str | None = None) -> Response:
        page = _page(request)
        if page.principal is not None:
            return RedirectResponse(_safe_next(next), status_code=303)
        return _login_form(page, next=next)

    @router.post("/login")
    async def post_login(request: Request) -> Response:
        page = _page(request)
        form = await request.form()
        name = str(form.get("name") or "").strip()[:100]
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or ""))
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        sent = str(form.get("csrf_token") or "")
        if not cookie or not secrets.compare_digest(cookie.encode(), sent.encode()):
            return _login_form(page, next=target, name=name, error=page.t("login.expired"), status_code=400)
        errors = {}
        if not name:
            errors["name"] = page.t("error.required")
        if not password:
            errors["password"] = page.t("error.required")
        if errors:
            return _login_form(page, next=target, name=name, errors=errors, status_code=422)
        now = utcnow()
        with transaction(page.state.sessions) as session:
            locked = web.recent_failures(session, name, now) >= web.MAX_FAILED
            user = None if locked else web.authenticate_password(session, name, password)
            if user is None:
                session.add(
                    AuditLog(
                        at=now,
                        user_id=None,
                        user_name=name or "-",
                        role="-",
                        action="sign_in",
                        outcome="locked" if locked else "failed",
                        request_path="/login",
                    )
                )
                secret = None
            else:
                secret = web.open_session(session, user, hours=page.settings.session_hours, now=now)
                store.audit(session, web.principal_of(user), "sign_in", request_path="/login")
        if secret is None:
            key = "login.locked" if locked else "login.failed"
            return _login_form(page, next=target, name=name, error=page.t(key, minutes=15), status_code=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            web.sign(secret, page.settings.key()),
            max_age=int(page.settings.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=page.settings.cookie_secure,
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @router.post("/logout")
    async def post_logout(request: Request) -> Response:
        page = _page(request)
        form = await request.form()
        if page.principal is not None and _csrf_ok(page, form):
            secret = web.unsign(request.cookies.get(SESSION_COOKIE), page.settings.key())
            with transaction(page.state.sessions) as session:
                web.close_session(session, secret)
                store.audit(session, page.principal, "sign_out", request_path="/logout")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/alerts")
    def get_alerts_page(request: Request) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        return _alerts_page(page)

    @router.get("/alerts.csv")
    def get_alerts_csv(request: Request) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        return _alerts_csv(page)

    @router.get("/households/{household_id}")
    def get_household_page(request: Request, household_id: str) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        done = request.query_params.get("done")
        if done in casework.ACTIONS:
            page.flash.append(("ok", page.t(f"done.{done}")))
        return _household_page(page, household_id, audit=True)

    @router.post("/households/{household_id}/actions")
    async def post_household_action(request: Request, household_id: str) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        form = await request.form()
        return await _case_action(page, household_id, form)

    @router.post("/households/{household_id}/reveal")
    async def post_reveal(request: Request, household_id: str) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        form = await request.form()
        return _reveal(page, household_id, form)

    @router.get("/dashboard")
    def get_dashboard(request: Request) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        if page.principal.role not in (Role.SUPERVISOR, Role.ADMIN):
            return _error_page(page, 403, "forbidden")
        moved, conflicts = request.query_params.get("moved"), request.query_params.get("conflicts")
        if moved is not None and moved.isdigit():
            page.flash.append(("ok", page.t("dashboard.moved", n=int(moved))))
        if conflicts is not None and conflicts.isdigit() and int(conflicts):
            page.flash.append(("warn", page.t("dashboard.conflicts", n=int(conflicts))))
        return _dashboard(page)

    @router.post("/dashboard/reassign")
    async def post_reassign(request: Request) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        if page.principal.role not in (Role.SUPERVISOR, Role.ADMIN):
            return _error_page(page, 403, "forbidden")
        form = await request.form()
        return _reassign(page, form)

    @router.get("/monitoring/{report_id}")
    def get_monitoring_report(request: Request, report_id: int) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        if page.principal.role not in (Role.SUPERVISOR, Role.ADMIN):  # modelers: GET /v1/monitoring/...
            return _error_page(page, 403, "forbidden")
        return _monitoring_report(page, report_id)

    @router.get("/audit")
    def get_audit(request: Request) -> Response:
        page = _page(request)
        if page.principal is None:
            return _to_login(request)
        if page.principal.role is not Role.ADMIN:
            return _error_page(page, 403, "forbidden")
        return _audit_page(page)

    return router


def install_pages(app: FastAPI, *, settings: web.PageSettings | None = None) -> None:
    """Add the pages, their static files and the case API to an app made by ``serving.app.create_app``."""
    app.state.pages = settings or web.PageSettings()
    app.include_router(caseapi.router)
    app.include_router(build_router())
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")


# --- sign-in ------------------------------------------------------------------------------------------


def _login_form(
    page: Page,
    *,
    next: str | None,
    name: str = "",
    error: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _render(
        page,
        "login.html",
        status_code,
        next=_safe_next(next),
        name=name,
        login_error=error,
        errors=errors or {},
        login_csrf=token,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=page.settings.cookie_secure,
        path="/login",
    )
    return response


# --- alert list ---------------------------------------------------------------------------------------


def _list_filters(page: Page) -> tuple[worklists.CaseFilter, dict[str, Any]]:
    query = page.request.query_params
    tier = query.get("tier") if query.get("tier") in TIERS else None
    status = str(query.get("status")) if query.get("status") in worklists.STATUS_CHOICES else "open"
    village = query.get("village") or None
    if village is not None and not (village.isdigit() and len(village) <= 12):
        village = None
    q = (query.get("q") or "").strip()[:64] or None
    filters = worklists.CaseFilter(
        village=village,
        tier=tier,
        status=status,
        overdue=_checked(query.get("overdue")),
        mine=_checked(query.get("mine")),
        q=q,
    )
    values = {
        "tier": tier or "",
        "status": status,
        "village": village or "",
        "q": q or "",
        "overdue": filters.overdue,
        "mine": filters.mine,
    }
    return filters, values


def _page_number(page: Page) -> int:
    raw = page.request.query_params.get("page") or "1"
    return max(1, min(int(raw), 100_000)) if raw.isdigit() else 1


def _alerts_page(page: Page) -> HTMLResponse:
    assert page.principal is not None
    filters, values = _list_filters(page)
    number_ = _page_number(page)
    size = page.settings.page_size
    now = utcnow()
    limits = page.state.policy.casework
    with page.state.sessions() as session:
        total, rows = worklists.list_cases(
            session,
            page.principal.scope,
            filters,
            limits=limits,
            now=now,
            user_id=page.principal.user_id,
            limit=size,
            offset=(number_ - 1) * size,
        )
        counts = worklists.summary_counts(
            session, page.principal.scope, limits=limits, now=now, user_id=page.principal.user_id
        )
        village_options = worklists.villages(session, page.principal.scope)
    page.audit(
        "list_alerts", detail={"filters": {k: v for k, v in values.items() if v}, "returned": len(rows)}
    )
    pages = max(1, math.ceil(total / size))
    base = {k: ("1" if v is True else v) for k, v in values.items() if v not in ("", False, None)}
    return _render(
        page,
        "alerts.html",
        rows=rows,
        total=total,
        counts=counts,
        values=values,
        villages=village_options,
        page_number=number_,
        pages=pages,
        now=now,
        statuses=worklists.STATUS_CHOICES,
        page_url=lambda n: "/alerts?" + urlencode({**base, "page": n}),
        csv_url="/alerts.csv?" + urlencode(base),
        first=(number_ - 1) * size + 1 if total else 0,
        last=min(number_ * size, total),
    )


def _alerts_csv(page: Page) -> Response:
    assert page.principal is not None
    filters, values = _list_filters(page)
    now = utcnow()
    with page.state.sessions() as session:
        total, rows = worklists.list_cases(
            session,
            page.principal.scope,
            filters,
            limits=page.state.policy.casework,
            now=now,
            user_id=page.principal.user_id,
            limit=MAX_EXPORT,
        )
    page.audit(
        "export_alerts",
        detail={"filters": {k: v for k, v in values.items() if v}, "rows": len(rows), "total": total},
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            page.t(f"csv.{c}")
            for c in (
                "rank",
                "household",
                "village",
                "tier",
                "risk",
                "status",
                "assignee",
                "due",
                "overdue",
                "reasons",
            )
        ]
    )
    for row in rows:
        alert = row["alert"]
        writer.writerow(
            [
                alert.rank,
                alert.household_id,
                alert.village_code,
                page.t(f"tier.{alert.tier}"),
                f"{alert.risk:.3f}",
                page.t(f"status.{alert.status}"),
                row["assignee"] or "",
                local_date(row["due_at"]),
                page.t("common.yes") if row["overdue"] else "",
                "；".join(r[page.lang] for r in alert.reasons or []),
            ]
        )
    # A BOM so that spreadsheet programs read the Chinese text as UTF-8.
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="doudi-alerts-{now:%Y%m%d}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- household page -----------------------------------------------------------------------------------


def _group_label(page: Page, group: str) -> str:
    key = f"group.{group}"
    return page.t(key) if i18n.has(page.lang, key) else group


def _figure_label(page: Page, name: str) -> str:
    key = f"figure.{name}"
    if i18n.has(page.lang, key):
        return page.t(key)
    from features import REGISTRY

    spec = REGISTRY.get(name)
    if spec is not None:
        return spec.label_zh if page.lang == "zh" else spec.label_en
    return name


def _tier_guides(page: Page) -> list[tuple[float, str, str]]:
    model = page.state.model
    tiers = dict(getattr(model.model, "tiers_", {}) or {}) if model is not None else {}
    return [
        (float(v), charts.TIER_CLASS[k], page.t(f"tier.{k}"))
        for k, v in tiers.items()
        if v is not None and k in charts.TIER_CLASS
    ]


def _household_page(
    page: Page,
    household_id: str,
    *,
    audit: bool = False,
    forms: dict[str, Any] | None = None,
    banner: tuple[str, str] | None = None,
    revealed: list[dict[str, Any]] | None = None,
    reveal_errors: dict[str, str] | None = None,
    reveal_reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    assert page.principal is not None
    scope = page.principal.scope
    now = utcnow()
    limits = page.state.policy.casework
    with page.state.sessions() as session:
        alert = worklists.latest_alert(session, scope, household_id)
        if alert is None:
            if audit:
                page.audit("view_household", outcome="not_found", household_id=household_id[:64])
            return _error_page(page, 404, "not_found")
        profile = get_profile(session, scope, household_id)
        history = store.risk_history(session, scope, household_id) if alert else []
        items = casework.timeline(session, scope, household_id)
        assignee = None
        if alert.assignee_id is not None:
            user = session.get(User, alert.assignee_id)
            assignee = user.name if user else None
        view = casework.case_view(alert, page.principal, limits=limits, now=now, assignee_name=assignee)
        workers = [u.name for u in casework.workers_for(session, alert.village_code)]
    if audit:
        page.audit("view_household", household_id=household_id, alert_id=alert.id, reason="casework")
    if banner is not None:
        page.flash.append(banner)
    groups = (alert.contributions or {}).get("groups") or {}
    ordered = sorted(groups.items(), key=lambda kv: -abs(float(kv[1])))
    reasons_chart = (
        charts.diverging_bars(
            [(_group_label(page, g), float(v)) for g, v in ordered if abs(float(v)) >= 0.005],
            title=page.t("household.reasons_chart"),
            up_label=page.t("household.raises"),
            down_label=page.t("household.lowers"),
        )
        if ordered
        else None
    )
    labels = [local_date(p["as_of"]) for p in history]
    trend = charts.line_chart(
        labels,
        [float(p["risk"]) for p in history],
        title=page.t("household.trend"),
        point_classes=[charts.TIER_CLASS.get(p["tier"], "") for p in history],
        guides=_tier_guides(page),
    )
    defaults = _form_defaults(page, alert, now)
    forms = forms or {}
    recommendations = [
        {
            **r,
            "figure_rows": [
                (_figure_label(page, k), _figure_value(k, v))
                for k, v in (r.get("figures") or {}).items()
                if v is not None
            ],
        }
        for r in alert.recommendations or []
    ]
    triggers = [
        {
            **tr,
            "figure_rows": [
                (_figure_label(page, k), _figure_value(k, v)) for k, v in (tr.get("figures") or {}).items()
            ],
        }
        for tr in alert.triggers or []
    ]
    can_reveal = Permission.REVEAL_IDENTITY in _permissions(page.principal)
    return _render(
        page,
        "household.html",
        status_code,
        alert=alert,
        case=view,
        profile=profile,
        summary=(profile.summary if profile else None),
        history=history,
        trend=trend,
        reasons_chart=reasons_chart,
        recommendations=recommendations,
        triggers=triggers,
        timeline=items,
        workers=workers,
        programmes=PROGRAMMES,
        outcomes=casework.OUTCOMES,
        close_reasons=casework.close_reasons_for(alert),
        defaults=defaults,
        forms=forms,
        can_reveal=can_reveal,
        recurring=RECURRING,
        revealed=revealed,
        reveal_errors=reveal_errors or {},
        reveal_reason=reveal_reason,
        now=now,
    )


def _permissions(principal: Principal) -> frozenset[Permission]:
    from serving.auth import PERMISSIONS

    return PERMISSIONS[principal.role]


def _form_defaults(page: Page, alert: Any, now: dt.datetime) -> dict[str, dict[str, str]]:
    """Pre-filled form values per action: a worker assigns to themself; a proposal starts from the first
    recommended programme and its estimated monthly amount, starting today."""
    first = next(
        (
            r
            for r in alert.recommendations or []
            if ASSISTANCE_PROGRAMME.get(r["programme"], r["programme"]) in PROGRAMMES
        ),
        None,
    )
    amount = first.get("monthly_amount") if first else None
    worker = page.principal is not None and page.principal.role is Role.WORKER
    return {
        "assign": {"assignee": page.principal.name if worker and page.principal else ""},
        "propose": {
            "programme": ASSISTANCE_PROGRAMME.get(first["programme"], first["programme"]) if first else "",
            "amount": f"{amount:.0f}" if amount else "",
            "start_date": local_date(now),
        },
    }


def _figure_value(name: str, value: Any) -> str:
    """A figure with its unit: shares as percentages, CPI changes in percent."""
    from features import REGISTRY

    spec = REGISTRY.get(name)
    unit = spec.unit if spec is not None else ""
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(float(value)):
        if unit in ("share", "ratio") or name in SHARE_FIGURES:
            return f"{value:.0%}"
        if unit == "percent":
            return f"{value:.1f}%"
    return number(value)


def _field_errors(page: Page, error: ValidationError) -> dict[str, str]:
    """Pydantic's errors as one message per form field, from the catalogue (never the submitted value)."""
    codes = {
        "literal_error": "choice",
        "string_too_long": "too_long",
        "date_from_datetime_parsing": "date",
        "date_parsing": "date",
        "date_from_datetime_inexact": "date",
        "float_parsing": "number",
        "int_parsing": "number",
        "missing": "required",
    }
    out: dict[str, str] = {}
    for item in error.errors():
        name = str(item["loc"][0]) if item.get("loc") else "form"
        code = codes.get(item.get("type", ""), "invalid")
        out.setdefault(name, page.t(f"error.{code}"))
    return out


# A failed case action re-renders the household page with what the worker typed; the status comes from
# the domain error, the banner (level, message key) from here.
_ACTION_ERROR_BANNERS: tuple[tuple[type[Exception], tuple[str, str]], ...] = (
    (InvalidInput, ("error", "error.form")),
    (Conflict, ("warn", "error.conflict")),
    (casework.TransitionNotAllowed, ("warn", "error.state")),
    (Forbidden, ("error", "error.forbidden_action")),
)


async def _case_action(page: Page, household_id: str, form: Any) -> HTMLResponse | RedirectResponse:
    assert page.principal is not None
    action = str(form.get("action") or "")
    values = {name: str(form.get(name) or "").strip() for name in FORM_FIELDS}
    state: dict[str, Any] = {"action": action, "values": values, "errors": {}}
    if not _csrf_ok(page, form):
        return _household_page(
            page, household_id, forms={action: state}, status_code=403, banner=("error", page.t("error.csrf"))
        )
    if action not in casework.ACTIONS:
        return _household_page(page, household_id, status_code=400, banner=("error", page.t("error.action")))
    raw_alert, raw_version = str(form.get("alert_id") or ""), str(form.get("expected_version") or "")
    if not raw_alert.isdigit() or not raw_version.isdigit():
        return _household_page(page, household_id, status_code=400, banner=("error", page.t("error.action")))
    with page.state.sessions() as session:
        alert = worklists.latest_alert(session, page.principal.scope, household_id)
    if alert is None or alert.id != int(raw_alert):
        return _error_page(page, 404, "not_found")
    body: dict[str, Any] = {"action": action, "expected_version": int(raw_version)}
    body.update({k: v for k, v in values.items() if v != ""})
    if "amount" in body:
        try:
            body["amount"] = float(body["amount"].replace(",", "").replace("，", ""))
        except ValueError:
            state["errors"]["amount"] = page.t("error.number")
            del body["amount"]
    try:
        request = casework.TransitionRequest.model_validate(body)
    except ValidationError as error:
        state["errors"] = {**_field_errors(page, error), **state["errors"]}
        return _household_page(
            page, household_id, forms={action: state}, status_code=422, banner=("error", page.t("error.form"))
        )
    if state["errors"]:
        return _household_page(
            page, household_id, forms={action: state}, status_code=422, banner=("error", page.t("error.form"))
        )
    from fastapi.concurrency import run_in_threadpool

    try:
        await run_in_threadpool(
            casework.transition,
            page.state.sessions,
            page.principal,
            alert.id,
            request,
            limits=page.state.policy.casework,
            request_path=str(page.request.url.path),
        )
    except (InvalidInput, Conflict, casework.TransitionNotAllowed, Forbidden) as error:
        if isinstance(error, InvalidInput):
            key = "message_zh" if page.lang == "zh" else "message"
            state["errors"] = {d["field"]: d[key] for d in error.detail}
        level, message = next(b for kind, b in _ACTION_ERROR_BANNERS if isinstance(error, kind))
        return _household_page(
            page, household_id, forms={action: state}, status_code=error.status_code,
            banner=(level, page.t(message)),
        )
    except NotFound:
        return _error_page(page, 404, "not_found")
    return RedirectResponse(f"/households/{quote(household_id)}?done={action}#case", status_code=303)


def _reveal(page: Page, household_id: str, form: Any) -> HTMLResponse:
    assert page.principal is not None
    reason = str(form.get("reason") or "").strip()[:500]
    if not _csrf_ok(page, form):
        return _household_page(page, household_id, status_code=403, banner=("error", page.t("error.csrf")))
    with page.state.sessions() as session:
        alert = worklists.latest_alert(session, page.principal.scope, household_id)
        profile = get_profile(session, page.principal.scope, household_id) if alert else None
    if alert is None:
        return _error_page(page, 404, "not_found")
    if Permission.REVEAL_IDENTITY not in _permissions(page.principal):
        page.audit(
            "reveal_identity",
            outcome="denied",
            household_id=household_id,
            alert_id=alert.id,
            reason=reason or None,
        )
        return _error_page(page, 403, "forbidden")
    if len(reason) < MIN_REASON:
        return _household_page(
            page,
            household_id,
            status_code=422,
            reveal_reason=reason,
            reveal_errors={"reason": page.t("error.too_short", min=MIN_REASON)},
        )
    identities = list(profile.identities) if profile is not None else []
    page.audit(
        "reveal_identity",
        household_id=household_id,
        alert_id=alert.id,
        reason=reason,
        detail={"shown": len(identities)},
    )
    return _household_page(page, household_id, revealed=identities, reveal_reason=reason)


# --- supervisor dashboard -----------------------------------------------------------------------------


def _dashboard(
    page: Page,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    assert page.principal is not None
    query = page.request.query_params
    township = query.get("township") if (query.get("township") or "").isdigit() else None
    worker = query.get("worker") or None
    now = utcnow()
    limits = page.state.policy.casework
    scope = page.principal.scope
    with page.state.sessions() as session:
        counts = worklists.summary_counts(session, scope, limits=limits, now=now)
        townships = worklists.by_township(session, scope, limits=limits, now=now)
        runs = worklists.by_run(session, scope)
        from serving.monitoring_routes import latest_reports  # the model's monitoring reports (issue 6)

        reports = latest_reports(session, limit=2)
        loads = worklists.caseloads(session, page.principal, limits=limits, now=now)
        workers = worklists.workers_in_scope(session, page.principal)
        worker_id = next((u.id for u in workers if u.name == worker), None)
        filters = worklists.CaseFilter(township=township, assignee_id=worker_id)
        open_total, open_cases = worklists.list_cases(
            session, scope, filters, limits=limits, now=now, limit=BULK_ROWS
        )
    page.audit("view_dashboard", detail={"township": township, "worker": worker})
    labels = [local_date(d) for d in runs["as_of"]]
    volume = charts.column_chart(labels, [float(v) for v in runs["alerts"]], title=page.t("dashboard.volume"))
    rates = [None if (isinstance(v, float) and math.isnan(v)) else float(v) for v in runs["confirmed_rate"]]
    rate = charts.line_chart(labels, rates, title=page.t("dashboard.rate"), y_max=1.0)
    return _render(
        page,
        "dashboard.html",
        status_code,
        counts=counts,
        townships=townships.to_dict("records"),
        states=[s for s in casework.STATES if s != "superseded"],
        runs=runs.to_dict("records"),
        volume=volume,
        rate=rate,
        loads=loads.to_dict("records"),
        workers=[u.name for u in workers],
        township=township or "",
        worker=worker or "",
        open_cases=open_cases,
        open_total=open_total,
        township_options=sorted(townships["township"].tolist()) if len(townships) else [],
        errors=errors or {},
        values=values or {},
        now=now,
        monitoring=[{"id": r.id, "kind": r.kind, "created_at": r.created_at, "run_id": r.run_id,
                     "as_of": r.as_of, "flagged": r.flagged, "flags": list(r.flags or [])[:2],
                     "has_page": bool(r.html_path)} for r in reports],
    )


def _monitoring_report(page: Page, report_id: int) -> Response:
    """A monitoring report's page (drift, performance, fairness: aggregates only), served from the data
    folder; the view is audited."""
    from fastapi.responses import FileResponse

    from serving.orm import MonitoringReport

    with page.state.sessions() as session:
        report = session.get(MonitoringReport, report_id)
    root = Path(page.state.settings.data_dir).resolve()
    path = Path(report.html_path).resolve() if report is not None and report.html_path else None
    if path is None or not path.is_relative_to(root) or not path.is_file():
        return _error_page(page, 404, "no_report")
    page.audit("view_monitoring_report", detail={"report_id": report_id, "kind": report.kind})
    return FileResponse(path, media_type="text/html; charset=utf-8")


def _reassign(page: Page, form: Any) -> Response:
    assert page.principal is not None
    picked = [str(v) for v in form.getlist("case")]
    target = str(form.get("assignee") or "").strip()
    note = str(form.get("note") or "").strip()[:2000]
    values = {"assignee": target, "note": note, "picked": picked}
    if not _csrf_ok(page, form):
        page.flash.append(("error", page.t("error.csrf")))
        return _dashboard(page, values=values, status_code=403)
    errors = {}
    if not picked:
        errors["case"] = page.t("dashboard.pick_cases")
    if not target:
        errors["assignee"] = page.t("error.required")
    pairs = []
    for item in picked:
        raw_id, _, raw_version = item.partition(":")
        if raw_id.isdigit() and raw_version.isdigit():
            pairs.append((int(raw_id), int(raw_version)))
    if errors or not pairs:
        page.flash.append(("error", page.t("error.form")))
        return _dashboard(
            page, errors=errors or {"case": page.t("dashboard.pick_cases")}, values=values, status_code=422
        )
    moved, conflicts, problems = 0, 0, list[str]()
    with page.state.sessions() as session:
        statuses = dict(
            session.execute(
                sa.select(Alert.id, Alert.status).where(
                    Alert.id.in_([p[0] for p in pairs]), page.principal.scope.clause(Alert.village_code)
                )
            )
            .tuples()
            .all()
        )
    for alert_id, version in pairs:
        action = "assign" if statuses.get(alert_id) == "new" else "transfer"
        request = casework.TransitionRequest.model_validate(
            {"action": action, "expected_version": version, "assignee": target, "note": note or None}
        )
        try:
            casework.transition(
                page.state.sessions,
                page.principal,
                alert_id,
                request,
                limits=page.state.policy.casework,
                request_path=str(page.request.url.path),
            )
            moved += 1
        except (Conflict, casework.TransitionNotAllowed):
            conflicts += 1
        except InvalidInput as error:
            key = "message_zh" if page.lang == "zh" else "message"
            problems.extend(d[key] for d in error.detail)
        except DoudiError:
            conflicts += 1
    if problems and not moved:
        page.flash.append(("error", "；".join(sorted(set(problems)))))
        return _dashboard(page, errors={"assignee": problems[0]}, values=values, status_code=422)
    query = urlencode({"moved": moved, "conflicts": conflicts + len(problems)})
    return RedirectResponse(f"/dashboard?{query}#reassign", status_code=303)


# --- audit log ----------------------------------------------------------------------------------------


def _audit_page(page: Page) -> HTMLResponse:
    assert page.principal is not None
    query = page.request.query_params
    errors: dict[str, str] = {}

    def day(name: str) -> dt.date | None:
        raw = (query.get(name) or "").strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            errors[name] = page.t("error.date")
            return None

    filters = worklists.AuditFilter(
        user=(query.get("user") or "").strip() or None,
        household_id=(query.get("household") or "").strip() or None,
        action=(query.get("action") or "").strip() or None,
        since=day("since"),
        until=day("until"),
    )
    number_ = _page_number(page)
    size = 50
    with page.state.sessions() as session:
        total, rows = worklists.audit_entries(
            session, page.principal.scope, filters, limit=size, offset=(number_ - 1) * size
        )
        actions = worklists.audit_actions(session)
    values = {
        "user": filters.user or "",
        "household": filters.household_id or "",
        "action": filters.action or "",
        "since": query.get("since") or "",
        "until": query.get("until") or "",
    }
    base = {k: v for k, v in values.items() if v}
    return _render(
        page,
        "audit.html",
        422 if errors else 200,
        rows=rows,
        total=total,
        values=values,
        errors=errors,
        actions=actions,
        page_number=number_,
        pages=max(1, math.ceil(total / size)),
        page_url=lambda n: "/audit?" + urlencode({**base, "page": n}),
    )
