"""The aiohttp application: routes of the three API dialects, access control, limits, headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hsi_detector import __version__, responses
from hsi_detector.errors import DEEPSTACK_PREFIX, ApiError, error_body
from hsi_detector.intake import read_json_image, read_upload
from hsi_detector.keys import KeyStore
from hsi_detector.limits import AuthFailureLimiter, LogLimiter, RateLimiter
from hsi_detector.metrics import CONTENT_TYPE
from hsi_detector.protocol import SECURITY_HEADERS

if TYPE_CHECKING:
    from hsi_detector.metrics import Metrics
    from hsi_detector.service import DetectionService

_LOGGER = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health"})
# DeepStack clients send api_key as a form field, so the handler checks it while reading the form.
DEFERRED_AUTH_PATHS = frozenset({"/v1/vision/detection"})
URL_KEY_NAMES = frozenset({"api_key", "apikey", "key", "token", "access_token"})


@dataclass(frozen=True, slots=True)
class AppState:
    """What the handlers share."""

    service: DetectionService
    keys: KeyStore
    metrics: Metrics
    rate_limiter: RateLimiter
    auth_limiter: AuthFailureLimiter
    log_limiter: LogLimiter = field(default_factory=LogLimiter)


STATE = web.AppKey("state", AppState)
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def presented_key(request: web.Request) -> str | None:
    """The key from X-API-Key or Authorization: Bearer (never from the URL)."""
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
    """Count and log one failed attempt; 429 once the address has used up its attempts."""
    client = _client(request)
    state.metrics.auth_failure()
    throttled = state.auth_limiter.blocked(client)
    state.auth_limiter.record_failure(client)
    if (suppressed := state.log_limiter.allow(client)) is not None:
        more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
        _LOGGER.warning("authentication failed from %s on %s%s", client, request.path, more)
    if throttled:
        return ApiError(
            429,
            "auth_throttled",
            "too many failed authentications from this address, try again later",
            {"Retry-After": str(state.auth_limiter.retry_after(client))},
        )
    if any(name in URL_KEY_NAMES for name in request.query):
        message = (
            "API keys are accepted in the X-API-Key or Authorization: Bearer header (or the "
            "DeepStack form field api_key), never in the URL"
        )
    else:
        message = "a valid API key is required"
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


def check_form_key(state: AppState, request: web.Request, key: str | None) -> None:
    """The DeepStack form's api_key: raises 401/429 unless it is valid."""
    if not state.keys.verify(key):
        raise _auth_failed(state, request)
    request["authenticated"] = True


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure into a JSON error of the endpoint's dialect and counts the request."""
    state = request.app[STATE]
    start = time.perf_counter()
    failure = ""
    refused: ApiError | None = None
    try:
        response = await handler(request)
    except ApiError as err:
        refused = err
        response = _error_response(request, err)
    except web.HTTPException as exc:
        reason = exc.reason.lower().replace(" ", "_")
        refused = ApiError(exc.status, reason, exc.reason)
        response = _error_response(request, refused)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    # Last line of defence: the client gets a generic 500, the log the type (no trace, no data).
    except Exception as err:  # noqa: BLE001
        failure = type(err).__name__
        refused = ApiError(500, "internal", "internal error")
        response = _error_response(request, refused)
    if refused is not None:
        state.metrics.refusal(refused.reason)
        if refused.status in {408, 413} and not request.content.is_eof():
            response.force_close()  # "Connection: close": the rest of this body is not read
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
    """Per-client rate limit, then the API key: a valid one is always served, failed attempts are
    throttled per address (429 with Retry-After once an address has used them up)."""
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
    key = presented_key(request)
    if key is None and request.path in DEFERRED_AUTH_PATHS:
        return await handler(request)  # the form's api_key is checked while reading it
    if not state.keys.verify(key):
        raise _auth_failed(state, request)
    request["authenticated"] = True
    return await handler(request)


async def expect_continue(request: web.Request) -> None:
    """`Expect: 100-continue`: remembered; the 100 is sent only once the body is wanted (after the
    key and the declared length were checked), so a refused request never gets one."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        raise web.HTTPExpectationFailed()
    request["expect_continue"] = True


async def _on_prepare(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _limit(request: web.Request) -> int:
    return request.app[STATE].service.settings.max_body_bytes


def _timeout(request: web.Request) -> float:
    return request.app[STATE].service.settings.body_timeout


async def detect_native(request: web.Request) -> web.Response:
    """POST /v1/detect: one image as the body or the multipart field `image`."""
    service = request.app[STATE].service
    upload = await read_upload(
        request, _limit(request), frozenset({"image"}), read_seconds=_timeout(request)
    )
    if len(upload.images) != 1:
        raise ApiError(400, "bad_form", "send exactly one image (use /v1/detect/batch for more)")
    options = service.options(upload.fields, ("confidence", "min_confidence"))
    [result] = await service.detect(upload.images, options)
    return web.json_response(responses.native(result, service.engine))


async def detect_native_batch(request: web.Request) -> web.Response:
    """POST /v1/detect/batch: several multipart `image` parts, answered in order."""
    service = request.app[STATE].service
    upload = await read_upload(
        request, _limit(request), frozenset({"image", "images"}), read_seconds=_timeout(request)
    )
    options = service.options(upload.fields, ("confidence", "min_confidence"))
    results = await service.detect(upload.images, options)
    return web.json_response({"results": [responses.native(r, service.engine) for r in results]})


async def detect_deepstack(request: web.Request) -> web.Response:
    """POST /v1/vision/detection: DeepStack / CodeProject.AI (key in a header or the form)."""
    state = request.app[STATE]
    deferred = state.keys.required and not request.get("authenticated")

    def check(key: str | None) -> None:
        check_form_key(state, request, key)

    upload = await read_upload(
        request,
        _limit(request),
        frozenset({"image"}),
        read_seconds=_timeout(request),
        key_check=check if deferred else None,
    )
    options = state.service.options(upload.fields, ("min_confidence", "confidence"))
    [result] = await state.service.detect(upload.images[:1], options)
    return web.json_response(responses.deepstack(result))


async def detect_rtdetr(request: web.Request) -> web.Response:
    """POST /detect: multipart `file`, or JSON {"image_base64": ...}."""
    service = request.app[STATE].service
    if request.content_type == "application/json":
        upload = await read_json_image(request, _limit(request), read_seconds=_timeout(request))
    else:
        upload = await read_upload(
            request, _limit(request), frozenset({"file", "image"}), read_seconds=_timeout(request)
        )
    options = service.options(upload.fields, ("confidence",))
    [result] = await service.detect(upload.images[:1], options)
    return web.json_response(responses.rtdetr(result))


async def detect_rtdetr_batch(request: web.Request) -> web.Response:
    """POST /detect/batch: multipart `files`, batched through the same queue."""
    service = request.app[STATE].service
    upload = await read_upload(
        request, _limit(request), frozenset({"files", "file"}), read_seconds=_timeout(request)
    )
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
    return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE})


def create_app(state: AppState) -> web.Application:
    """The application with its routes and middlewares."""
    # Our own readers enforce the body limit while streaming; aiohttp's limit is a backstop.
    app = web.Application(
        middlewares=[guard, access],
        client_max_size=state.service.settings.max_body_bytes + 65536,
    )
    app[STATE] = state
    app.on_response_prepare.append(_on_prepare)
    post, get = app.router.add_post, app.router.add_get
    post("/v1/detect", detect_native, expect_handler=expect_continue)
    post("/v1/detect/batch", detect_native_batch, expect_handler=expect_continue)
    post(DEEPSTACK_PREFIX + "detection", detect_deepstack, expect_handler=expect_continue)
    post("/detect", detect_rtdetr, expect_handler=expect_continue)
    post("/detect/batch", detect_rtdetr_batch, expect_handler=expect_continue)
    get("/health", health, expect_handler=expect_continue)
    get("/metrics", metrics, expect_handler=expect_continue)
    return app
