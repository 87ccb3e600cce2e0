"""Bench-only URLconf: the real routes plus bare views that only store what they receive.

``/bench/copy`` COPYs a ``{"batch": [...]}`` into the inbox table with psycopg;
``/bench/insert`` INSERTs one message. No auth, validation, dedupe or nudge: the floor that
the real endpoint is compared with, served by the same gunicorn and middleware.
"""

from __future__ import annotations

import uuid

import orjson
from django.db import connection
from django.http import HttpResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

COLUMNS = (
    "message_id, request_id, type, payload, received_at, occurred_at, status, reason, detail, "
    "attempts"
)


@csrf_exempt
def copy_batch(request):
    items = orjson.loads(request.read())["batch"]
    now = timezone.now()
    request_id = uuid.uuid4()
    sql = f"COPY usage_inboxevent ({COLUMNS}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for item in items:
            payload = orjson.dumps(item).decode()
            copy.write_row(
                (
                    item["messageId"],
                    request_id,
                    item["type"],
                    payload,
                    now,
                    now,
                    "pending",
                    "",
                    "",
                    0,
                )
            )
    return HttpResponse(orjson.dumps({"accepted": len(items)}), content_type="application/json")


@csrf_exempt
def insert_one(request):
    item = orjson.loads(request.read())
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO usage_inboxevent ({COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'pending', '', '', 0)",
            [item["messageId"], uuid.uuid4(), item["type"], orjson.dumps(item).decode(), now, now],
        )
    return HttpResponse(b'{"accepted": 1}', content_type="application/json")


urlpatterns = [
    path("bench/copy", copy_batch),
    path("bench/insert", insert_one),
    path("", include("planhat_segment.urls")),
]
