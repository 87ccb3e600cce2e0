"""The demo's health and alerts part (``make run DEMO=1``, after the demo workspace loads).

Processes the demo's queued events in this process (the same pipeline the worker runs), scores
every company (green, amber and red, from the demo's rising, steady and falling usage), makes a
"usage dropped" rule that emails a CS address and the company owner and calls a webhook, and
evaluates it — so the list shows all three bands and the falling company has an open alert.
Its notifications are sent here too: the email is printed by the console backend, and the
webhook goes to a receiver this command runs on 127.0.0.1 for the moment, which checks the
signature and answers 200 — then the demo webhook is disabled, since nothing listens there
once the command ends. Idempotent: a second run opens and sends nothing new.

The scores read the daily rollups, which processing maintains in the claim's transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings

from .alerts import alert_rule_create, alerts_evaluate, webhook_create
from .models_alerts import AlertRule, RuleKind, Webhook
from .notifications import deliveries_send_due
from .services import health_scores_recompute

DEMO_RULE = "Usage dropped by half (demo)"
DEMO_WEBHOOK = "Demo receiver (ran during bootstrap)"
DEMO_RECIPIENT = "cs-team@demo.example"


@contextmanager
def _receiver(secret: str):
    """A one-off local webhook receiver: checks X-Signature, answers 200 (or 401)."""
    seen: list[bool] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            ok = hmac.compare_digest(expected, self.headers.get("X-Signature", ""))
            seen.append(ok)
            answer = b"demo receiver: signature verified" if ok else b"bad signature"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/demo-webhook", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _loopback_allowed():
    # This process only (it ends with the command): the demo receiver is on 127.0.0.1.
    allowed = list(settings.WEBHOOK_ALLOWED_HOSTS)
    settings.WEBHOOK_ALLOWED_HOSTS = [*allowed, "127.0.0.1"]
    try:
        yield
    finally:
        settings.WEBHOOK_ALLOWED_HOSTS = allowed


def demo_health_show() -> list[str]:
    """Process, score, evaluate and notify for the demo workspace; lines saying what it did."""
    from usage.services import inbox_drain

    drained = inbox_drain()
    summary = health_scores_recompute()
    lines = [f"Processed {drained.events} queued events here.", str(summary)]
    secret = secrets.token_hex(16)
    with _receiver(secret) as (url, seen), _loopback_allowed():
        webhook = Webhook.objects.filter(name=DEMO_WEBHOOK).first()
        if webhook is None:
            webhook = webhook_create(data={"name": DEMO_WEBHOOK, "url": url, "secret": secret})
        elif webhook.enabled:
            webhook.url, webhook.secret = url, secret
            webhook.save(update_fields=["url", "secret", "updated_at"])
        if not AlertRule.objects.filter(name=DEMO_RULE).exists():
            alert_rule_create(
                data={
                    "name": DEMO_RULE,
                    "kind": RuleKind.USAGE_DROP,
                    "drop_percent": 50,
                    "window_days": 7,
                    "baseline_periods": 4,
                    "email_recipients": [DEMO_RECIPIENT],
                    "notify_owner": True,
                },
                webhooks=[webhook],
            )
        evaluation = alerts_evaluate()
        lines.append(str(evaluation))
        sent = deliveries_send_due(max_seconds=20)
        lines.append(str(sent))
        if seen:
            verdict = "verified" if all(seen) else "NOT verified"
            lines.append(f"The demo receiver got {len(seen)} webhook call(s), signature {verdict}.")
            # Nothing listens at its address once this command ends.
            Webhook.objects.filter(pk=webhook.pk).update(enabled=False)
    return lines
