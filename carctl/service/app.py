"""The service tool's web application (Starlette): login, the live car, the fault log, the parameters, the runs.

Rules of this module:
- Every request is hostile until parsed: bodies of at most MAX_BODY_BYTES (Starlette refuses more with 413), a
  path and query of at most MAX_TARGET_CHARS (414), forms parsed here with a bounded number of fields, every value
  checked; headers are bounded by the server (server.py). A bad request gets a status and a sentence, never a
  traceback.
- Every page but the login needs a session (sessions.py); every POST needs the CSRF token of its session (or, for
  the login form, the token of the login cookie): without it, 403 and nothing changes. So does a change from a
  session whose account has changed in the users file since its login (a role taken away, a password changed).
- The pages and the live stream only read: the loop's state comes from the feed (feed.py), the fault log from its
  file, the parameters from the configuration the process was started with (parameters.py). The one file written is
  the Parameters form's, for a maintenance account only: the settings file the platform also writes
  (runtime/overrides.py: validated there, written atomically), then a `reload` to the loop, which applies it between
  two cycles; every attempt, refused or not, is audited with the form's path as its action. The Commissioning
  page's actions (commissioning.py) are requests the loop passes to the core, which decides. Live streams are
  bounded (MAX_STREAMS at once): a flood of them is refused with 429, and each is a small coroutine that reads the
  latest state, never the loop.
- Logins, refusals, lockouts and logouts go to the audit trail (audit.py).
- Nothing from outside the board: the page's script and style are served from carctl/service/static, and the
  Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, \
    StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from carctl.core.faults import FAULTS
from carctl.protocol.loopback import service_reload
from carctl.runtime import overrides
from carctl.runtime.config import FirmwareConfig
from carctl.runtime.fault_log import read_log
from carctl.service import accounts as accounts_file
from carctl.service import commissioning, fault_meanings, parameters
from carctl.service.audit import AuditTrail
from carctl.service.feed import LoopFeed
from carctl.service.runs_page import make_runs_page
from carctl.service.sessions import Lockout, Session, Sessions, csrf_matches

HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 8 * 1024
MAX_TARGET_CHARS = 2048
# h11 bounds a request's head only while it is incomplete (server.py); one that arrives whole is bounded here.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS = 64
MAX_FORM_FIELDS = 8
BODY_DEADLINE_S = 10.0  # a form's body arrives whole within this, or the form is refused (a slow body holds nothing)
MAX_STREAMS = 8
MAX_STREAMS_PER_SESSION = 3  # a phone and a laptop tab or two: one signed-in browser cannot hold every stream
# Each password check takes 16 MiB for 0.1 s (accounts.py): a burst of logins is checked two at a time, not all at once.
MAX_CONCURRENT_HASHES = 2
STREAM_EVERY_S = 0.1  # the page is updated 10 times a second at most (the loop's feed rate)
STREAM_KEEPALIVE_S = 5.0
FAULT_LOG_SHOWN = 500
SESSION_COOKIE = "carctl_session"
LOGIN_COOKIE = "carctl_login"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
LEVEL_NAMES = {1: "display only", 2: "no new trips", 3: "stop at the next landing", 4: "stop at once"}


@dataclass(slots=True)
class ServiceSettings:
    users_file: Path
    fault_log: Path | None
    session_s: float
    lockout_failures: int
    lockout_s: float
    tls: bool
    landings_m: tuple[float, ...]
    fault_log_capacity: int = 500  # the log is read with the loop's own bound (runtime.fault_log_capacity)
    car_name: str = ""
    config: FirmwareConfig | None = None  # the configuration the process was started with (the Parameters page)


@dataclass(slots=True)
class ServiceState:
    settings: ServiceSettings
    feed: LoopFeed | None
    audit: AuditTrail
    clock: Callable[[], float] = time.monotonic
    sessions: Sessions = field(init=False)
    lockout: Lockout = field(init=False)
    meanings: dict[str, fault_meanings.FaultMeaning] = field(default_factory=fault_meanings.load)
    key_docs: dict[str, parameters.KeyDoc] = field(default_factory=parameters.load_docs)
    streams: int = 0
    streams_by_session: dict[str, int] = field(default_factory=dict)  # by the session's CSRF token; at most 64 keys

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.settings.session_s)
        self.lockout = Lockout(self.settings.lockout_failures, self.settings.lockout_s)


class RequestLimits:
    """Refuses an over-long request target or head before any route sees it, and adds the security headers to every
    response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) > MAX_TARGET_CHARS:
            await PlainTextResponse("request target too long\n", 414, headers=SECURITY_HEADERS)(scope, receive, send)
            return
        headers = scope.get("headers", [])
        if len(headers) > MAX_HEADERS or sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
            await PlainTextResponse("request headers too large\n", 431, headers=SECURITY_HEADERS)(scope, receive,
                                                                                                  send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                            if name.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def read_form(request: Request) -> dict[str, str] | None:
    """An application/x-www-form-urlencoded body as one value per field, or None when it is not one."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    try:
        body = (await asyncio.wait_for(request.body(), BODY_DEADLINE_S)).decode("utf-8")
        pairs = urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError, TimeoutError, ClientDisconnect):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            return None  # a field given twice: which one would count?
        form[name] = value
    return form


def build_app(state: ServiceState, on_startup: Callable[[], None] | None = None) -> Starlette:
    # Every template is escaped, whatever its name ends with: what the page shows came from outside.
    templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                                                       autoescape=True))
    settings = state.settings
    hashing = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
    # An unknown account is checked against this, so that it takes as long as a known one: the time of the answer
    # does not tell which accounts exist.
    unknown_account_hash = accounts_file.hash_password(secrets.token_urlsafe(16))

    def page(request: Request, name: str, session: Session | None, status: int = 200,
             **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"session": session, "tls": settings.tls,
                                                          "car_name": settings.car_name, **context},
                                          status_code=status)

    def session_of(request: Request) -> Session | None:
        return state.sessions.get(request.cookies.get(SESSION_COOKIE), state.clock())

    def cookie_flags() -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict", "secure": settings.tls, "path": "/"}

    async def login_form(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/", 303)
        return _login_page(request, "", 200)

    def _login_page(request: Request, error: str, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", None, status, error=error, login_token=token)
        response.set_cookie(LOGIN_COOKIE, token, max_age=600, **cookie_flags())
        return response

    async def login(request: Request) -> Response:
        client = client_of(request)
        form = await read_form(request)
        cookie_token = request.cookies.get(LOGIN_COOKIE)
        if form is None or not cookie_token or not secrets.compare_digest(
                cookie_token.encode("utf-8", "surrogatepass"),
                form.get("login_token", "").encode("utf-8", "surrogatepass")):
            state.audit.record("login", "", client, "refused: no valid form token")
            return _login_page(request, "The form had expired. Please log in again.", 403)
        user = form.get("user", "")[:64]
        password = form.get("password", "")
        keys = (f"user:{user}", f"client:{client}")
        now = state.clock()
        locked_s = state.lockout.locked(keys, now)
        if locked_s:
            state.audit.record("login", user, client, "refused: locked out", seconds_left=round(locked_s))
            return _login_page(request, f"Too many failed logins. Try again in {int(locked_s) + 1} s.", 429)
        account = await asyncio.to_thread(_account, user)  # a file read: off the event loop
        matches = False
        if len(password) <= accounts_file.MAX_PASSWORD_BYTES:
            stored = account.password_hash if account is not None else unknown_account_hash
            async with hashing:
                matches = await asyncio.to_thread(accounts_file.password_matches, password, stored)
        if not matches or account is None:
            state.lockout.failed(keys, now)
            outcome = "refused: locked out now" if state.lockout.locked(keys, now) else "refused: wrong password"
            state.audit.record("login", user, client, outcome)
            return _login_page(request, "Wrong user name or password.", 401)
        state.lockout.succeeded(keys)
        token, session = state.sessions.open(account.name, account.role, now, account.password_hash)
        state.audit.record("login", account.name, client, "ok", role=account.role)
        response = RedirectResponse("/", 303)
        response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.session_s), **cookie_flags())
        response.delete_cookie(LOGIN_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def _account(user: str) -> accounts_file.Account | None:
        # Read at each login: an account added or changed with `carctl service add-user` counts at once.
        try:
            return accounts_file.load(settings.users_file).get(user)
        except accounts_file.AccountError:
            return None

    async def logout(request: Request) -> Response:
        session = session_of(request)
        refusal = await _refuse_change(request, session, account_unchanged=False)  # whatever became of it: out
        if refusal is not None:
            return refusal
        assert session is not None
        state.sessions.close(request.cookies.get(SESSION_COOKIE))
        state.audit.record("logout", session.user, client_of(request), "ok")
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def _refuse_change(request: Request, session: Session | None,
                             account_unchanged: bool = True) -> Response | None:
        """A 403 for a POST without a session or without its CSRF token, or whose account has changed since the
        login (its role or its password: `add-user` again; the session is then ended), audited; else None."""
        form = await read_form(request)
        if session is None:
            state.audit.record(request.url.path, "", client_of(request), "refused: no session")
            return PlainTextResponse("Log in first.\n", 403)
        if form is None or not csrf_matches(session, form.get("csrf_token")):
            state.audit.record(request.url.path, session.user, client_of(request), "refused: no valid CSRF token")
            return PlainTextResponse("Refused: the form's token is missing or wrong (reload the page).\n", 403)
        if account_unchanged:
            account = await asyncio.to_thread(_account, session.user)  # a file read: off the event loop
            if account is None or not session.account_unchanged(account.role, account.password_hash):
                state.sessions.close(request.cookies.get(SESSION_COOKIE))
                state.audit.record(request.url.path, session.user, client_of(request),
                                   "refused: account changed since the login")
                return PlainTextResponse("Refused: your account has changed since you logged in: log in again.\n",
                                         403)
        return None

    async def live_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", 303)
        return page(request, "live.html", session, landings_m=list(settings.landings_m))

    def snapshot() -> dict[str, Any]:
        feed = state.feed
        if feed is None:
            return {"stale": True, "live": None, "health": None}
        return {"stale": feed.stale(), "live": feed.live, "health": feed.health}

    async def live_json(request: Request) -> Response:
        if session_of(request) is None:
            return JSONResponse({"error": "log in first"}, 401)
        return JSONResponse(snapshot())

    async def live_stream(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return PlainTextResponse("Log in first.\n", 401)
        if state.streams >= MAX_STREAMS:
            return PlainTextResponse("Too many live pages open; close one.\n", 429)
        session_key = session.csrf_token
        if state.streams_by_session.get(session_key, 0) >= MAX_STREAMS_PER_SESSION:
            return PlainTextResponse(
                f"This login has {MAX_STREAMS_PER_SESSION} live pages open already; close one.\n", 429)
        state.streams += 1
        state.streams_by_session[session_key] = state.streams_by_session.get(session_key, 0) + 1

        async def events() -> AsyncIterator[bytes]:
            try:
                sent_updates = -1
                sent_s = 0.0
                while state.sessions.get(request.cookies.get(SESSION_COOKIE), state.clock()) is not None:
                    updates = state.feed.live_updates if state.feed is not None else 0
                    now = state.clock()
                    if updates != sent_updates or now - sent_s >= STREAM_KEEPALIVE_S:
                        sent_updates, sent_s = updates, now
                        yield b"data: " + json.dumps(snapshot(), separators=(",", ":")).encode() + b"\n\n"
                    await asyncio.sleep(STREAM_EVERY_S)
                yield b"event: ended\ndata: {}\n\n"  # the session has expired: the page goes to the login
            finally:
                state.streams -= 1
                left = state.streams_by_session.get(session_key, 1) - 1
                if left > 0:
                    state.streams_by_session[session_key] = left
                else:
                    state.streams_by_session.pop(session_key, None)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def faults_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", 303)
        filters, problem = _fault_filters(request.query_params)
        records, log_problem = await asyncio.to_thread(_fault_records)  # a file read: off the event loop
        shown = [record for record in records if _matches(record, filters)][-FAULT_LOG_SHOWN:]
        shown.reverse()  # newest first
        for record in shown:
            meaning = state.meanings.get(record["fault"]) or fault_meanings.unknown(record["fault"])
            record["doc_meaning"], record["reset"] = meaning.meaning, meaning.reset
            record["when"] = datetime.datetime.fromtimestamp(float(record["t"]), datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S UTC")
            record["level_name"] = LEVEL_NAMES.get(record["level"], str(record["level"]))
        active = state.feed.live.get("faults", []) if state.feed is not None and state.feed.live else []
        return page(request, "faults.html", session, 400 if problem else 200, records=shown, filters=filters,
                    problem=problem or log_problem, fault_names=sorted(fault.value for fault in FAULTS),
                    levels=LEVEL_NAMES, active=[state.meanings.get(f) or fault_meanings.unknown(f) for f in active],
                    log_configured=settings.fault_log is not None)

    def _fault_records() -> tuple[list[dict[str, Any]], str]:
        if settings.fault_log is None:
            return [], "This car keeps no fault log (runtime.fault_log is empty)."
        try:
            contents = read_log(settings.fault_log, settings.fault_log_capacity)
        except FileNotFoundError:
            return [], "No fault log yet: the car has not raised a fault since it was installed."
        except (OSError, ValueError) as error:
            return [], f"The fault log cannot be read: {str(error)[:200]}"
        note = f"{contents.malformed} malformed record(s) left out." if contents.malformed else ""
        return [dict(record) for record in contents.records], note

    def _overrides_path() -> Path | None:
        config = settings.config
        return Path(config.platform.overrides_path) if config is not None else None

    async def _parameters_page(request: Request, session: Session, status: int = 200, error: str = "",
                               saved: bool = False) -> Response:
        config = settings.config
        if config is None:
            return page(request, "parameters.html", session, status, sections=[], error=error or
                        "This service tool was started without a configuration.", saved=False, form={})
        path = _overrides_path()
        current = await asyncio.to_thread(overrides.read, path) if path is not None else {}
        listed = parameters.parameters(config, current, state.key_docs)
        sections: dict[str, list[parameters.Parameter]] = {}
        for parameter in listed:
            sections.setdefault(parameter.section, []).append(parameter)
        form = {p.key: p.raw for p in listed if p.editable}
        return page(request, "parameters.html", session, status, sections=list(sections.items()), error=error,
                    saved=saved, form=form, overrides_path=str(path))

    async def parameters_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/login", 303)
        return await _parameters_page(request, session, saved=request.query_params.get("saved") == "1")

    async def change_parameters(request: Request) -> Response:
        session = session_of(request)
        refusal = await _refuse_change(request, session)
        if refusal is not None:
            return refusal
        assert session is not None
        client, action = client_of(request), request.url.path
        if not session.may_change:
            state.audit.record(action, session.user, client, "refused: read-only account")
            return PlainTextResponse("Refused: a read-only account cannot change parameters.\n", 403)
        form = await read_form(request) or {}
        changes, problem = parameters.changes_from_form(form)
        path = _overrides_path()
        if not problem and (settings.config is None or path is None):
            problem = "this service tool was started without a configuration"
        if not problem:
            assert settings.config is not None
            problem = overrides.problem(settings.config.controller, changes) or ""
        if problem:
            state.audit.record(action, session.user, client, f"refused: {problem}")
            return await _parameters_page(request, session, 400, error=problem)
        assert path is not None
        try:
            await asyncio.to_thread(overrides.write, path, changes)
        except OSError as error:
            state.audit.record(action, session.user, client, "refused: the settings file cannot be written")
            return await _parameters_page(request, session, 500, error=f"The settings file {path} cannot be "
                                                                       f"written: {error.strerror or error}")
        if state.feed is not None:
            state.feed.to_loop.send(service_reload())
        state.audit.record(action, session.user, client, "ok", changes=changes)
        return RedirectResponse("/parameters?saved=1", 303)

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Not found.\n", 404)

    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Internal error (logged).\n", 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if state.feed is not None:
            feed = state.feed
            asyncio.get_running_loop().add_reader(feed.fileno(), feed.take)
            task = asyncio.create_task(_keep_watching(feed))
        if on_startup is not None:
            on_startup()
        yield
        if task is not None:
            task.cancel()
            asyncio.get_running_loop().remove_reader(state.feed.fileno())  # type: ignore[union-attr]

    routes = [
        Route("/", live_page),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/live.json", live_json),
        Route("/live/stream", live_stream),
        Route("/faults", faults_page),
        Route("/parameters", parameters_page, methods=["GET"]),
        Route("/parameters", change_parameters, methods=["POST"]),
        Route("/runs", make_runs_page(state.feed, settings.landings_m, session_of, page)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    routes += commissioning.routes(state, page, session_of, _refuse_change, client_of)
    app = Starlette(routes=routes, lifespan=lifespan, max_body_size=MAX_BODY_BYTES,
                    exception_handlers={404: not_found, 500: server_error})
    app.add_middleware(RequestLimits)
    return app


async def _keep_watching(feed: LoopFeed) -> None:
    while True:
        try:
            feed.ask()
        except Exception:  # noqa: BLE001 - a send that fails is counted by the sender; the page goes on
            pass
        await asyncio.sleep(0.25)


def _fault_filters(query: Any) -> tuple[dict[str, Any], str]:
    """The fault log's filters from the query (level, fault, since, until), each checked; a sentence when one is
    not acceptable (the page then shows everything and says why)."""
    filters: dict[str, Any] = {"level": None, "fault": "", "since": "", "until": ""}
    level = query.get("level", "")
    if level:
        if level not in ("1", "2", "3", "4"):
            return filters, "level must be 1, 2, 3 or 4"
        filters["level"] = int(level)
    fault = query.get("fault", "")
    if fault:
        if fault not in {known.value for known in FAULTS}:
            return {**filters, "level": None}, f"no fault is called {fault[:40]!r}"
        filters["fault"] = fault
    for key in ("since", "until"):
        text = query.get(key, "")
        if text:
            try:
                moment = datetime.datetime.fromisoformat(text[:32])
            except ValueError:
                return {**filters, "level": None, "fault": ""}, f"{key} must be a date and time, e.g. 2026-12-02T08:00"
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.timezone.utc)
            filters[key] = text[:32]
            filters[f"{key}_s"] = moment.timestamp()
    return filters, ""


def _matches(record: dict[str, Any], filters: dict[str, Any]) -> bool:
    if filters["level"] is not None and record["level"] != filters["level"]:
        return False
    if filters["fault"] and record["fault"] != filters["fault"]:
        return False
    if "since_s" in filters and float(record["t"]) < filters["since_s"]:
        return False
    if "until_s" in filters and float(record["t"]) > filters["until_s"]:
        return False
    return True


__all__ = ["HTMLResponse", "ServiceSettings", "ServiceState", "build_app"]
