"""The Celery consumer of every worker: back on the broker within about two seconds.

Celery reconnects to a broker that went away with kombu's default backoff (2, 4, 6 … up to
30 s between attempts), so after a 20 s Redis outage a worker could sit idle for another
10 s or more with the broker long back. Work resuming within seconds of the broker's return
(README, "Recovery") needs attempts every second or two; each failed attempt against a
broker that is down is a refused connection, which costs nothing. Selected with
``CELERY_WORKER_CONSUMER``.
"""

from __future__ import annotations

import functools

from celery.worker.consumer import Consumer

RECONNECT_FIRST_SECONDS = 1.0
RECONNECT_STEP_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 2.0


class FastReconnectConsumer(Consumer):
    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(
            conn.ensure_connection,
            interval_start=RECONNECT_FIRST_SECONDS,
            interval_step=RECONNECT_STEP_SECONDS,
            interval_max=RECONNECT_MAX_SECONDS,
        )
        return super().ensure_connected(conn)
