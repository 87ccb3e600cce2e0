"""Make a fresh install usable: integration row, admin login, schedules; optionally demo data.

``make run`` calls it before starting the processes and it prints what to paste into
Segment. Idempotent: running it again changes nothing that exists.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from integrations.selectors import connection_instructions
from integrations.services import integration_ensure
from planhat_segment.services.schedules import schedules_ensure


class Command(BaseCommand):
    help = "Ensure the integration, an admin login and the periodic tasks; print how to connect."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="load a small demo workspace")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, demo: bool, host: str, port: str, **options):
        integration = integration_ensure()
        schedules_ensure()  # migrate does too; an entry deleted since comes back here
        username, password, created = self._ensure_admin()
        if demo:
            from integrations.demo import demo_workspace_load

            summary = demo_workspace_load()
            self.stdout.write(self.style.SUCCESS(f"Demo workspace: {summary}"))
            from health.demo import demo_health_show

            for line in demo_health_show():
                self.stdout.write(line)
        instructions = connection_instructions(integration=integration)
        admin_url = f"http://{host}:{port}/admin/"
        lines = [
            "",
            f"  Admin:            {admin_url}",
            f"  Login:            {username} / {password}"
            + ("" if created else "  (existing user)"),
            f"  Integration page: {admin_url}integrations/segment/",
            f"  Destination URL:  {instructions.destination_url}",
            f"  Authorization:    {instructions.authorization_header}",
            f"  Tenant token:     {integration.tenant_token}",
            "",
        ]
        self.stdout.write("\n".join(lines))

    def _ensure_admin(self) -> tuple[str, str, bool]:
        """The admin login: from ADMIN_USERNAME / ADMIN_PASSWORD, else generated once."""
        user_model = get_user_model()
        username = settings.ADMIN_USERNAME
        password_file = settings.VAR_DIR / "admin_password"
        password = settings.ADMIN_PASSWORD or (
            password_file.read_text().strip() if password_file.exists() else ""
        )
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if not password:
                password = secrets.token_urlsafe(12)
                password_file.write_text(password)
                password_file.chmod(0o600)
            user_model.objects.create_superuser(
                username=username, email=settings.ADMIN_EMAIL, password=password
            )
            return username, password, True
        if settings.ADMIN_PASSWORD and not user.check_password(settings.ADMIN_PASSWORD):
            user.set_password(settings.ADMIN_PASSWORD)
            user.save(update_fields=["password"])
        return username, password or "(set ADMIN_PASSWORD to reset it)", False
