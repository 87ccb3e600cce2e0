"""Planhat's CSV activity stream, read as it arrives: never the whole body in memory.

``PUT /analytics/stream/csv/{tenantToken}``, header row ``cId, id, name, email, weight,
action, date, count`` (any order; a column may be left out). Rows are translated as bulk
activities and stored in chunks of ``CSV_CHUNK_ROWS`` (one inbox request each), so memory
stays bounded whatever the body's size; a bad row is an error of its own, by its index
among the data rows (0 = the first row after the header).
"""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ..body import READ_CHUNK, BadBody, BodyTooLarge
from ..deadline import database_deadline
from ..messages import Message
from .items import ItemError, activity_message
from .services import PlanhatResult, planhat_items_ingest

CSV_COLUMNS = ("cId", "id", "name", "email", "weight", "action", "date", "count")
CSV_CHUNK_ROWS = 5_000
# A field longer than this is a broken file (an unclosed quote), not an activity.
csv.field_size_limit(1024 * 1024)


def _raw_chunks(request: HttpRequest, limit: int) -> Iterator[bytes]:
    """The body's bytes as they arrive, at most ``limit`` of them (BodyTooLarge past it)."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError as exc:
            raise BadBody("Content-Length is not a number.") from exc
        stream: Any = request
    elif request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]  # chunked transfer encoding under gunicorn
    else:
        stream = request
    size = 0
    while chunk := stream.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        yield chunk


def _decoded(chunks: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Undo gzip / deflate as the bytes arrive, never expanding past ``limit`` in all."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = 32 + zlib.MAX_WBITS
    else:
        raise BadBody(f"Unsupported Content-Encoding {encoding!r}: use gzip or none.")
    inflater = zlib.decompressobj(wbits)
    size = 0
    try:
        for chunk in chunks:
            pending = chunk
            while True:
                if inflater.eof and pending:  # the next gzip member (concatenation is valid)
                    inflater = zlib.decompressobj(wbits)
                piece = inflater.decompress(pending, READ_CHUNK)
                size += len(piece)
                if size > limit:
                    raise BodyTooLarge
                if piece:
                    yield piece
                pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                # A full piece may leave output inside zlib: ask again until it is drained.
                if not pending and len(piece) < READ_CHUNK:
                    break
        if not inflater.eof:
            raise BadBody("The gzip body is truncated.")
    except zlib.error as exc:
        raise BadBody(f"The body is not valid {encoding}: {exc}.") from exc


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """UTF-8 text (a BOM dropped) split into lines that keep their ends, for ``csv``."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    rest = ""
    try:
        for chunk in chunks:
            text = rest + decoder.decode(chunk)
            lines = text.splitlines(keepends=True)
            rest = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
            yield from lines
        rest += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise BadBody(f"The CSV is not UTF-8: {exc}.") from exc
    if rest:
        yield rest


def _header(row: list[str]) -> list[str]:
    names = [name.strip() for name in row]
    known = {c.lower(): c for c in CSV_COLUMNS}
    unknown = [n for n in names if n.lower() not in known]
    if unknown or not names:
        raise BadBody(
            f"Unknown CSV column(s) {unknown[:5]}: the header row names columns among "
            + ", ".join(CSV_COLUMNS)
            + "."
        )
    return [known[n.lower()] for n in names]


def csv_stream_ingest(*, request: HttpRequest, limit: int) -> PlanhatResult:
    """Read, translate and store the CSV body in chunks; raises BadBody / BodyTooLarge
    (rows of earlier chunks stay stored: a resend dedupes them) and DatabaseError."""
    received_at = timezone.now()
    chunks = _decoded(
        _raw_chunks(request, limit), request.META.get("HTTP_CONTENT_ENCODING", ""), limit
    )
    reader = csv.reader(_lines(chunks), skipinitialspace=True)
    try:
        first = next(reader, None)
        if first is None:
            raise BadBody("The CSV is empty: send a header row, then one row per activity.")
        columns = _header(first)
        result = PlanhatResult()
        batch: list[tuple[int, Any]] = []
        for index, row in enumerate(reader):
            if not any(cell.strip() for cell in row):
                batch.append((index, "an empty row"))
            elif len(row) != len(columns):
                batch.append((index, f"a row of {len(row)} fields (the header has {len(columns)})"))
            else:
                batch.append((index, {c: v.strip() for c, v in zip(columns, row, strict=True)}))
            if len(batch) >= CSV_CHUNK_ROWS:
                _chunk_store(batch, received_at, result)
                batch = []
        _chunk_store(batch, received_at, result)
    except csv.Error as exc:
        raise BadBody(f"The CSV cannot be read at line {reader.line_num}: {exc}.") from exc
    return result


def _chunk_store(batch: list[tuple[int, Any]], received_at, result: PlanhatResult) -> None:
    # Each chunk's database work under the ingest deadline of its own: a stream may last
    # longer than one request of the JSON endpoints, a chunk's insert may not.
    with database_deadline(settings.INGEST_DATABASE_DEADLINE_SECONDS):
        planhat_items_ingest(
            items=batch, translate=_row_message, received_at=received_at, result=result
        )


def _row_message(row: Any, **kwargs: Any) -> Message:
    # A row of the wrong shape arrives as a string saying so (see csv_stream_ingest).
    if isinstance(row, str):
        raise ItemError(f"Not an activity: {row}.")
    return activity_message({k: v for k, v in row.items() if v != ""}, **kwargs)
