"""`manage.py lowcode up` (what `make run` runs) and `manage.py lowcode doctor`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from lowcode import embedded, health
from lowcode.cli import Subcommand
from lowcode.tenancy import services as tenancy

DEMO_TENANTS = [
    {"schema_name": "acme", "name": "Acme", "domain": "acme.localhost"},
    {"schema_name": "globex", "name": "Globex", "domain": "globex.localhost"},
]


class UpCommand(Subcommand):
    type = "up"
    help = ("Start the product: embedded PostgreSQL/Redis (unless DATABASE_URL/REDIS_URL are set), "
            "migrations, demo tenants, then the web server, a Celery worker and beat until Ctrl-C.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("LOWCODE_PORT", 8000)))
        parser.add_argument("--no-serve", action="store_true",
                            help="Prepare everything, then exit instead of serving.")

    def handle(self, command, port, no_serve, **options):
        console = Console(file=command.stdout)
        with console.status(_("Starting embedded services...")):
            try:
                servers = embedded.start_missing()
            except embedded.EmbeddedServiceError as error:
                raise CommandError(str(error)) from error
        try:
            self.prepare(console, port)
            if not no_serve:
                self.serve(console, port)
        finally:
            embedded.stop(servers)

    def prepare(self, console: Console, port: int) -> None:
        with console.status(_("Migrating the public and tenant schemas...")):
            call_command("migrate_schemas", interactive=False, verbosity=0)
        with console.status(_("Collecting static files...")):
            call_command("collectstatic", interactive=False, verbosity=0)
        credentials = []
        public = tenancy.ensure_public_tenant()
        password = tenancy.create_tenant_admin(public, username="admin",
                                               email=f"admin@{settings.PUBLIC_DOMAIN}")
        if password:
            credentials.append((f"http://{settings.PUBLIC_DOMAIN}:{{port}}/admin/", "admin", password))
        for spec in DEMO_TENANTS:
            with console.status(_("Preparing tenant %s...") % spec["schema_name"]):
                tenant, _created = tenancy.ensure_tenant(**spec)
                password = tenancy.create_tenant_admin(tenant, username="admin",
                                                       email=f"admin@{spec['domain']}")
            if password:
                credentials.append((f"http://{spec['domain']}:{{port}}/admin/", "admin", password))
        call_command("lowcode", "seed_demo", stdout=console.file)
        console.print(_("Tenants ready: %s") % ", ".join(
            [public.schema_name] + [spec["schema_name"] for spec in DEMO_TENANTS]))
        if credentials:
            table = Table(title=_("Credentials (shown this once; change them after logging in)"))
            for column in (_("admin"), _("user"), _("password")):
                table.add_column(column)
            for url, user, password in credentials:
                table.add_row(url.format(port=port), user, password)
            console.print(table)

    def serve(self, console: Console, port: int) -> None:
        python = sys.executable
        processes = {
            # Workers, threads, restarts and the address (127.0.0.1 unless LOWCODE_BIND): lowcode/gunicorn_conf.py.
            "web": [python, "-m", "gunicorn", "-c", "python:lowcode.gunicorn_conf", "--graceful-timeout", "5"],
            "worker": [python, "-m", "celery", "-A", "lowcode", "worker", "-l", "INFO", "--concurrency", "2"],
            "beat": [python, "-m", "celery", "-A", "lowcode", "beat", "-l", "INFO"],
        }
        # Own sessions: Ctrl-C reaches only this process, which then stops the children in
        # order (web first) instead of racing their own shutdowns against this loop.
        environment = {**os.environ, "LOWCODE_PORT": str(port)}
        children = {name: subprocess.Popen(cmd, start_new_session=True, env=environment)
                    for name, cmd in processes.items()}
        console.print(_("Serving on http://acme.localhost:%(port)d/ and http://globex.localhost:%(port)d/ "
                        "(platform: http://localhost:%(port)d/admin/). Ctrl-C stops everything.")
                      % {"port": port})
        # Also when started with SIGINT ignored (a background job): Ctrl-C and SIGTERM both stop.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                for name, child in children.items():
                    if child.poll() is not None:
                        raise CommandError(_("%(name)s exited with code %(code)s; stopping.")
                                           % {"name": name, "code": child.returncode})
                time.sleep(0.5)
        except KeyboardInterrupt:
            console.print(_("Stopping..."))
        finally:
            _stop_children(children.values())


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_children(children) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


class DoctorCommand(Subcommand):
    type = "doctor"
    help = "Check the database, Redis, Celery workers, storage and migrations; exit 1 on any FAIL."

    def handle(self, command, **options):
        checks = [health.check_database, health.check_redis, health.check_celery,
                  health.check_storage, health.check_migrations]
        failures = 0
        for check in checks:
            result = check()
            if result.ok:
                command.stdout.write(f"{command.style.SUCCESS('OK  ')}  {result.name:<11} {result.detail}")
            else:
                failures += 1
                command.stdout.write(f"{command.style.ERROR('FAIL')}  {result.name:<11} {result.detail}")
                command.stdout.write(f"      {'':<11} {_('hint')}: {result.hint}")
        if failures:
            raise CommandError(_("%d check(s) failed.") % failures, returncode=1)
