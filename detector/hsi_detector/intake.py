"""Reading request bodies within the size limit: raw image bodies, multipart forms, base64 JSON.

The limit is enforced while reading (a declared Content-Length over it is refused before reading,
and before `Expect: 100-continue` is answered), counting every byte the connection received for the
body, so an oversized upload costs at most the limit in memory; the whole body must arrive within
the body time limit (408 otherwise).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
import json
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader
from aiohttp.http_exceptions import HttpProcessingError

from hsi_detector.errors import ApiError
from hsi_detector.protocol import body_too_large

if TYPE_CHECKING:
    from aiohttp import web

MAX_PARTS = 64
MAX_FIELD_BYTES = 4096
KEY_FIELD = "api_key"
# DeepStack's key travels in the form: before it has been checked, at most this much of the form's
# parts is read (a camera frame before the key still fits; most clients send the key first).
PREAUTH_BYTES = 2 * 1024 * 1024
_CHUNK = 65536

type KeyCheck = Callable[[str | None], None]
"""Checks a key from the form; raises ApiError (401/429) unless it is valid."""


@dataclass(slots=True)
class Upload:
    """The images of one request, in order, and its text fields (query string, then form)."""

    images: list[bytes] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    other_files: list[str] = field(default_factory=list)
    """Names of file fields that are not image fields (skipped; named when no image came)."""


class _Budget:
    """Everything the connection received for this body counts against the limit (part headers,
    preamble, epilogue too); before a form key is checked, at most PREAUTH_BYTES of parts are
    read."""

    def __init__(self, request: web.Request, limit: int, key_check: KeyCheck | None) -> None:
        self.content = request.content
        self.limit = limit
        self.key_check = key_check  # None once the key is checked (or it was in a header)
        self.read = 0

    def check(self, size: int = 0) -> None:
        """After reading `size` more bytes of the body."""
        if self.content.total_bytes > self.limit:
            raise body_too_large(self.limit)
        self.read += size
        if self.key_check is not None and self.read > PREAUTH_BYTES:
            self.key_check(None)  # raises: no key within what is read before it


def _check_declared(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise body_too_large(limit)


async def _body_wanted(request: web.Request, limit: int) -> None:
    """Refuse a declared length over the limit; only then answer `Expect: 100-continue`."""
    _check_declared(request, limit)
    if request.get("expect_continue") and not request.get("continued"):
        request["continued"] = True
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not started


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes the limit."""
    budget = _Budget(request, limit, None)
    chunks: list[bytes] = []
    async for chunk in request.content.iter_chunked(_CHUNK):
        chunks.append(chunk)
        budget.check(len(chunk))
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, budget: _Budget, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        budget.check(len(chunk))
        size += len(chunk)
        if size > cap:
            raise ApiError(400, "bad_form", f"form field {part.name!r} is longer than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_file(part: BodyPartReader) -> bool:
    return part.filename is not None or part.headers.get("Content-Type", "").startswith("image/")


async def read_multipart(
    request: web.Request,
    limit: int,
    image_fields: frozenset[str],
    key_check: KeyCheck | None = None,
) -> Upload:
    """Images from the named file fields, other fields as text; `key_check` gets the form's
    api_key as soon as it is read (and None if the form has none)."""
    budget = _Budget(request, limit, key_check)
    upload = Upload(fields=dict(request.query))
    try:
        reader = await request.multipart()
        count = 0
        while (part := await reader.next()) is not None:
            budget.check()
            count += 1
            if count > MAX_PARTS or not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_form", f"at most {MAX_PARTS} plain form parts")
            if part.name == KEY_FIELD and budget.key_check is not None:
                raw = await _read_part(part, budget, MAX_FIELD_BYTES)
                budget.key_check(raw.decode("utf-8", errors="replace").strip())
                budget.key_check = None
            elif part.name in image_fields:
                upload.images.append(await _read_part(part, budget, limit))
            elif _is_file(part):
                upload.other_files.append(str(part.name))
                while chunk := await part.read_chunk(_CHUNK):  # skipped, but counted
                    budget.check(len(chunk))
            elif part.name:
                raw = await _read_part(part, budget, MAX_FIELD_BYTES)
                upload.fields[part.name] = raw.decode("utf-8", errors="replace").strip()
        budget.check()
    except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as err:
        # aiohttp's multipart reader reports bad framing as ValueError/AssertionError/RuntimeError,
        # part headers over the limits as BadHttpMessage / LineTooLong.
        raise ApiError(400, "bad_form", "the multipart body is malformed") from err
    if budget.key_check is not None:
        budget.key_check(None)
    return upload


def _timed_out(timeout: float) -> ApiError:
    return ApiError(408, "body_timeout", f"the request body did not arrive within {timeout:g} s")


async def read_upload(
    request: web.Request,
    limit: int,
    image_fields: frozenset[str],
    *,
    read_seconds: float,
    key_check: KeyCheck | None = None,
) -> Upload:
    """A raw image body (Content-Type image/*) or a multipart form, read within `read_seconds`."""
    ctype = request.content_type
    if ctype != "multipart/form-data" and not ctype.startswith("image/"):
        raise ApiError(
            415,
            "unsupported_content_type",
            "send the image as the body with an image/* content type, or as multipart/form-data",
        )
    if ctype != "multipart/form-data" and key_check is not None:
        key_check(None)  # a raw body carries no key: refuse before reading it
    await _body_wanted(request, limit)
    try:
        async with asyncio.timeout(read_seconds):
            if ctype == "multipart/form-data":
                upload = await read_multipart(request, limit, image_fields, key_check)
            else:
                upload = Upload([await read_body(request, limit)], dict(request.query))
    except TimeoutError as err:
        raise _timed_out(read_seconds) from err
    if not upload.images:
        names = " or ".join(sorted(image_fields))
        message = f"no image in the request (form field {names})"
        if upload.other_files:
            message += "; got file field " + ", ".join(repr(n) for n in upload.other_files)
        raise ApiError(400, "no_image", message)
    return upload


def decode_base64_image(text: object) -> bytes:
    """The bytes of a base64 image (a data: URL prefix is allowed)."""
    if not isinstance(text, str) or not text:
        raise ApiError(400, "bad_json", "image_base64 must be a non-empty string")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, "bad_base64", "image_base64 is not valid base64") from err


async def read_json_image(request: web.Request, limit: int, *, read_seconds: float) -> Upload:
    """The RT-DETR service's JSON body: {"image_base64": "..."} plus optional "confidence"."""
    await _body_wanted(request, limit)
    try:
        async with asyncio.timeout(read_seconds):
            body = await read_body(request, limit)
    except TimeoutError as err:
        raise _timed_out(read_seconds) from err
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ApiError(400, "bad_json", "the body is not valid JSON") from err
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_json", "the JSON body must be an object")
    fields = dict(request.query)
    for name in ("confidence", "classes"):
        if name in payload:
            fields[name] = str(payload[name])
    return Upload([decode_base64_image(payload.get("image_base64"))], fields)
