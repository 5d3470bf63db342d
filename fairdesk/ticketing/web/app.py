"""The web app factory: dependencies in, no files or network needed; security headers; one error handler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from fairdesk.ticketing.web import agent, auth, dashboard, health, public, report
from fairdesk.ticketing.web.limits import RateLimited
from fairdesk.ticketing.web.pages import HERE, TicketNotFound, WebContext, render

logger = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own forms, which the origin
    # check must refuse; the link's token still never leaves for another site.
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_BODY = 256 * 1024  # bytes; the largest form, a 20,000-character email reply, urlencodes to at most ~180 KiB
SESSION_MAX_AGE = 12 * 3600  # an agent logs in once per working day


def _body_too_large(request: Request) -> Response | None:
    # Forms are small; refuse big or unsized bodies before anything parses them.
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return PlainTextResponse("A Content-Length header is required.", status_code=411)
    if int(length) > MAX_BODY:
        return PlainTextResponse("The form is too large.", status_code=413)
    return None


UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, as browsers send it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _cross_origin(request: Request, allowed: str) -> Response | None:
    # Browsers send Origin on every cross-site POST (and Referer, unless told not to): one that names another site
    # is a forged request even with a valid CSRF token. Clients that send neither (curl, scripts) still need the token.
    if request.method not in UNSAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin is None and (referer := request.headers.get("referer")):
        origin = origin_of(referer)
    if origin is None or origin.lower() == allowed:
        return None
    logger.info("refused a %s %s from origin %r", request.method, request.url.path, origin[:100])
    return PlainTextResponse(
        f"This form was sent from another site ({origin[:100]}); open the page at {allowed} and send it from there.",
        status_code=403,
    )


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """How the pages are served. uvicorn must not rewrite the client from X-Forwarded-For (by default it believes
    127.0.0.1, so any local hop could name any client); only ``web.trusted_proxies`` is believed (limits.client_key)."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)


def create_app(ctx: WebContext) -> FastAPI:
    app = FastAPI(title="fairdesk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    https = ctx.public_url.startswith("https://")
    allowed_origin = origin_of(ctx.public_url)
    app.add_middleware(
        SessionMiddleware,
        secret_key=ctx.secret_key,
        session_cookie="fairdesk",
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=https,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[..., Any]) -> Response:
        refused = _body_too_large(request) or _cross_origin(request, allowed_origin)
        response: Response = refused or await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/t/", "/agent")):
            response.headers["Cache-Control"] = "no-store"
        if https:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> HTMLResponse:
        response = render(
            request, "error.html", status_code=429, message="Too many requests. Please wait a little and try again."
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(TicketNotFound)
    async def not_found(request: Request, exc: TicketNotFound) -> HTMLResponse:
        return render(request, "404.html", status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return render(request, "404.html", status_code=404)
        if request.url.path.startswith("/healthz"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return render(request, "error.html", status_code=exc.status_code, message=str(exc.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> HTMLResponse:
        logger.exception("error serving %s %s", request.method, request.url.path)
        return render(request, "error.html", status_code=500, message="Something went wrong on our side.")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(public.router)
    app.include_router(auth.router)
    app.include_router(agent.router)
    app.include_router(dashboard.router)
    app.include_router(report.router)
    app.include_router(health.router)
    return app
