"""Reading the request body ourselves: a limit before and while reading, bounded gunzip, JSON.

Django's ``request.body`` applies ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB, a 400 on a normal
Segment batch) and never sees a chunked body, so the view reads the stream here, once.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from django.http import HttpRequest

READ_CHUNK = 256 * 1024


class BodyTooLarge(Exception):
    """The body, raw or decompressed, is over the endpoint's limit (answered 413)."""


class BadBody(Exception):
    """The body cannot be decoded or is not JSON (answered 400 with this message)."""


def body_read(*, request: HttpRequest, limit: int) -> bytes | bytearray:
    """Read the raw body, at most ``limit`` bytes; raise BodyTooLarge past that.

    The declared Content-Length is checked before reading anything. Without one (chunked
    transfer encoding) Django's own stream is empty, so the server's ``wsgi.input`` is read
    directly when the server says it is terminated (gunicorn does), with the same limit.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            length = int(declared)
        except ValueError as exc:
            raise BadBody("Content-Length is not a number.") from exc
        if length > limit:
            raise BodyTooLarge
        return _read_bounded(request, limit)
    if request.META.get("wsgi.input_terminated"):
        return _read_bounded(request.META["wsgi.input"], limit)
    return _read_bounded(request, limit)


def _read_bounded(stream: Any, limit: int) -> bytearray:
    # One growing buffer, not a list of chunks joined at the end: a 32 MB body then costs
    # about 32 MB, not twice that at the join.
    buffer = bytearray()
    while True:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - len(buffer)))
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > limit:
            raise BodyTooLarge
    return buffer


def body_decode(*, raw: bytes | bytearray, content_encoding: str, limit: int) -> bytes | bytearray:
    """Undo ``Content-Encoding`` (gzip or deflate), never expanding past ``limit`` bytes.

    A small gzip bomb stops at ``limit + 1`` decompressed bytes and raises BodyTooLarge.
    """
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = 32 + zlib.MAX_WBITS  # zlib or gzip header, detected
    else:
        raise BadBody(f"Unsupported Content-Encoding {content_encoding!r}: use gzip or none.")
    out: list[bytes] = []
    size = 0
    data = raw
    try:
        while data:
            # One decompressor per gzip member: concatenated members are valid gzip.
            inflater = zlib.decompressobj(wbits)
            pending = data
            while not inflater.eof:
                piece = inflater.decompress(pending, limit + 1 - size)
                out.append(piece)
                size += len(piece)
                if size > limit:
                    raise BodyTooLarge
                pending = inflater.unconsumed_tail
                if not piece and not pending:
                    break  # input exhausted before the end of the member
            if not inflater.eof:
                raise BadBody("The gzip body is truncated.")
            data = inflater.unused_data
    except zlib.error as exc:
        raise BadBody(f"The body is not valid {encoding}: {exc}.") from exc
    return b"".join(out)


def body_parse(*, data: bytes | bytearray) -> dict | list:
    """Parse JSON with orjson; only an object or an array is a Segment body."""
    if not data or data.isspace():  # isspace() copies nothing, unlike strip()
        raise BadBody("The body is empty: send a Segment message, a batch or an array of them.")
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadBody(f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(parsed, dict | list):
        raise BadBody(
            f"The body is JSON {type(parsed).__name__}, not an object or an array: send a "
            'Segment message, a {"batch": [...]} envelope or an array of messages.'
        )
    return parsed
