"""Reading request bodies within the size limit: raw image bodies, multipart forms, base64 JSON.

The limit is enforced while reading (a declared Content-Length over it is refused before reading),
so an oversized upload costs at most the limit in memory.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
import json
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader

from hsi_detector.errors import ApiError

if TYPE_CHECKING:
    from aiohttp import web

MAX_PARTS = 64
MAX_FIELD_BYTES = 4096
_CHUNK = 65536


@dataclass(slots=True)
class Upload:
    """The images of one request, in order, and its text fields (query string, then form)."""

    images: list[bytes] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise too_large(self.limit)


def too_large(limit: int) -> ApiError:
    """The error for a body over the limit."""
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")


def _check_declared(request: web.Request, limit: int) -> None:
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes the limit."""
    _check_declared(request, limit)
    budget = _Budget(limit)
    chunks: list[bytes] = []
    async for chunk in request.content.iter_chunked(_CHUNK):
        budget.take(len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_part(part: BodyPartReader, budget: _Budget, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(_CHUNK):
        budget.take(len(chunk))
        size += len(chunk)
        if size > cap:
            raise ApiError(400, "bad_form", f"form field {part.name!r} is too long")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_multipart(request: web.Request, limit: int, image_fields: frozenset[str]) -> Upload:
    """Images from the named file fields, other fields as text."""
    _check_declared(request, limit)
    budget = _Budget(limit)
    upload = Upload(fields=dict(request.query))
    try:
        reader = await request.multipart()
        count = 0
        while (part := await reader.next()) is not None:
            count += 1
            if count > MAX_PARTS or not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_form", f"at most {MAX_PARTS} plain form parts")
            if part.name in image_fields:
                upload.images.append(await _read_part(part, budget, limit))
            elif part.name:
                raw = await _read_part(part, budget, MAX_FIELD_BYTES)
                upload.fields[part.name] = raw.decode("utf-8", errors="replace").strip()
    except (ValueError, AssertionError, RuntimeError) as err:
        # aiohttp's multipart reader reports bad framing as ValueError/AssertionError/RuntimeError
        raise ApiError(400, "bad_form", "the multipart body is malformed") from err
    return upload


async def read_upload(request: web.Request, limit: int, image_fields: frozenset[str]) -> Upload:
    """A raw image body (Content-Type image/*) or a multipart form."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        upload = await read_multipart(request, limit, image_fields)
    elif ctype.startswith("image/"):
        upload = Upload([await read_body(request, limit)], dict(request.query))
    else:
        raise ApiError(
            415,
            "unsupported_content_type",
            "send the image as the body with an image/* content type, or as multipart/form-data",
        )
    if not upload.images:
        names = " or ".join(sorted(image_fields))
        raise ApiError(400, "no_image", f"no image in the request (form field {names})")
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


async def read_json_image(request: web.Request, limit: int) -> Upload:
    """The RT-DETR service's JSON body: {"image_base64": "..."} plus optional "confidence"."""
    body = await read_body(request, limit)
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
