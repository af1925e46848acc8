"""The aiohttp application: routes of the three API dialects, access control, limits, headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hsi_detector import __version__, responses
from hsi_detector.errors import DEEPSTACK_PREFIX, ApiError, error_body
from hsi_detector.intake import read_json_image, read_upload
from hsi_detector.keys import KeyStore
from hsi_detector.limits import AuthFailureLimiter, RateLimiter

if TYPE_CHECKING:
    from hsi_detector.metrics import Metrics
    from hsi_detector.service import DetectionService

_LOGGER = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Server": "hsi-detector",
}
PUBLIC_PATHS = frozenset({"/health"})
# DeepStack clients send api_key as a form field, so the handler checks it after reading the form.
DEFERRED_AUTH_PATHS = frozenset({"/v1/vision/detection"})


@dataclass(frozen=True, slots=True)
class AppState:
    """What the handlers share."""

    service: DetectionService
    keys: KeyStore
    metrics: Metrics
    rate_limiter: RateLimiter
    auth_limiter: AuthFailureLimiter


STATE = web.AppKey("state", AppState)
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def presented_key(request: web.Request) -> str | None:
    """The key from X-API-Key or Authorization: Bearer."""
    if key := request.headers.get("X-API-Key"):
        return key.strip()
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _client(request: web.Request) -> str:
    return request.remote or "unknown"


def _endpoint(request: web.Request) -> str:
    route = request.match_info.route
    return route.resource.canonical if route.resource is not None else "unmatched"


def _error_response(request: web.Request, err: ApiError) -> web.Response:
    return web.json_response(
        error_body(request.path, err.status, err.reason, err.message),
        status=err.status,
        headers=err.headers,
    )


def _auth_failed(state: AppState, request: web.Request) -> ApiError:
    state.metrics.auth_failure()
    state.auth_limiter.record_failure(_client(request))
    _LOGGER.warning("authentication failed from %s on %s", _client(request), request.path)
    return ApiError(
        401, "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
    )


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into a JSON error of the endpoint's dialect and counts the request."""
    state = request.app[STATE]
    start = time.perf_counter()
    failure = ""
    try:
        response = await handler(request)
    except ApiError as err:
        response = _error_response(request, err)
    except web.HTTPException as exc:
        reason = exc.reason.lower().replace(" ", "_")
        response = _error_response(request, ApiError(exc.status, reason, exc.reason))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    # Last line of defence: the client gets a generic 500, the log the type (no trace, no data).
    except Exception as err:  # noqa: BLE001
        failure = type(err).__name__
        response = _error_response(request, ApiError(500, "internal", "internal error"))
    if failure:
        _LOGGER.error("unexpected %s on %s", failure, request.path)
    elapsed = time.perf_counter() - start
    state.metrics.request(_endpoint(request), response.status, elapsed)
    _LOGGER.debug(
        "%s %s -> %d in %.1f ms", request.method, request.path, response.status, elapsed * 1000
    )
    return response


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-client rate limit, lockout after repeated failures, then the API key."""
    state = request.app[STATE]
    client = _client(request)
    if not state.rate_limiter.allow(client):
        state.metrics.rate_limit()
        raise ApiError(
            429,
            "rate_limited",
            "too many requests",
            {"Retry-After": str(state.rate_limiter.retry_after())},
        )
    if not state.keys.required or request.path in PUBLIC_PATHS:
        return await handler(request)
    if state.auth_limiter.blocked(client):
        raise ApiError(
            429,
            "auth_locked",
            "too many failed authentications, try again later",
            {"Retry-After": str(int(state.auth_limiter.window))},
        )
    key = presented_key(request)
    if key is None and request.path in DEFERRED_AUTH_PATHS:
        return await handler(request)  # the handler checks the form's api_key
    if not state.keys.verify(key):
        raise _auth_failed(state, request)
    request["authenticated"] = True
    return await handler(request)


async def _on_prepare(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _limit(request: web.Request) -> int:
    return request.app[STATE].service.settings.max_body_bytes


async def detect_native(request: web.Request) -> web.Response:
    """POST /v1/detect: one image as the body or the multipart field `image`."""
    service = request.app[STATE].service
    upload = await read_upload(request, _limit(request), frozenset({"image"}))
    if len(upload.images) != 1:
        raise ApiError(400, "bad_form", "send exactly one image (use /v1/detect/batch for more)")
    options = service.options(upload.fields, ("confidence", "min_confidence"))
    [result] = await service.detect(upload.images, options)
    return web.json_response(responses.native(result, service.engine))


async def detect_native_batch(request: web.Request) -> web.Response:
    """POST /v1/detect/batch: several multipart `image` parts, answered in order."""
    service = request.app[STATE].service
    upload = await read_upload(request, _limit(request), frozenset({"image", "images"}))
    options = service.options(upload.fields, ("confidence", "min_confidence"))
    results = await service.detect(upload.images, options)
    return web.json_response({"results": [responses.native(r, service.engine) for r in results]})


async def detect_deepstack(request: web.Request) -> web.Response:
    """POST /v1/vision/detection: DeepStack / CodeProject.AI."""
    state = request.app[STATE]
    upload = await read_upload(request, _limit(request), frozenset({"image"}))
    deferred = state.keys.required and not request.get("authenticated")
    if deferred and not state.keys.verify(upload.fields.get("api_key")):
        raise _auth_failed(state, request)
    options = state.service.options(upload.fields, ("min_confidence", "confidence"))
    [result] = await state.service.detect(upload.images[:1], options)
    return web.json_response(responses.deepstack(result))


async def detect_rtdetr(request: web.Request) -> web.Response:
    """POST /detect: multipart `file`, or JSON {"image_base64": ...}."""
    service = request.app[STATE].service
    if request.content_type == "application/json":
        upload = await read_json_image(request, _limit(request))
    else:
        upload = await read_upload(request, _limit(request), frozenset({"file", "image"}))
    options = service.options(upload.fields, ("confidence",))
    [result] = await service.detect(upload.images[:1], options)
    return web.json_response(responses.rtdetr(result))


async def detect_rtdetr_batch(request: web.Request) -> web.Response:
    """POST /detect/batch: multipart `files`, batched through the same queue."""
    service = request.app[STATE].service
    upload = await read_upload(request, _limit(request), frozenset({"files", "file"}))
    options = service.options(upload.fields, ("confidence",))
    results = await service.detect(upload.images, options)
    return web.json_response(
        {
            "results": [responses.rtdetr(r) for r in results],
            "total_inference_time_ms": round(sum({r.inference_ms for r in results}), 2),
        }
    )


async def health(request: web.Request) -> web.Response:
    """GET /health: status for anyone; details with a valid key (or when no key is configured)."""
    state = request.app[STATE]
    body: dict[str, Any] = {"status": "ok"}
    if not state.keys.required or state.keys.verify(presented_key(request)):
        service = state.service
        body |= {
            "model_loaded": True,
            "engine": service.engine.engine_type,
            "runtime": service.engine.runtime,
            "model": service.engine.name,
            "device": service.engine.device,
            "queue_depth": service.batcher.depth,
            "max_batch_size": service.batcher.max_batch_size,
            "version": __version__,
        }
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    text = request.app[STATE].metrics.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def create_app(state: AppState) -> web.Application:
    """The application with its routes and middlewares."""
    # Our own readers enforce the body limit while streaming; aiohttp's limit is a backstop.
    app = web.Application(
        middlewares=[guard, access],
        client_max_size=state.service.settings.max_body_bytes + 65536,
    )
    app[STATE] = state
    app.on_response_prepare.append(_on_prepare)
    app.router.add_post("/v1/detect", detect_native)
    app.router.add_post("/v1/detect/batch", detect_native_batch)
    app.router.add_post(DEEPSTACK_PREFIX + "detection", detect_deepstack)
    app.router.add_post("/detect", detect_rtdetr)
    app.router.add_post("/detect/batch", detect_rtdetr_batch)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app
