"""`manage.py lowcode audit verify|seal|checkpoint|export --tenant T`."""

from __future__ import annotations

import sys
from datetime import datetime, time

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from audit import audit_actions, services
from lowcode.cli import Subcommand, add_tenant_argument, tenant_from_option


def parse_time(value: str) -> datetime:
    """An ISO date (midnight) or date-time; without an offset, in the default time zone."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        parsed = datetime.combine(day, time.min)
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def _time_option(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        from argparse import ArgumentTypeError

        raise ArgumentTypeError(_("%(value)r is not an ISO date or date-time.") % {"value": value}) from None


class AuditCommand(Subcommand):
    type = "audit"
    help = "Verify a tenant's audit trail, seal its new events into a block, sign a checkpoint of it, or export its events."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        add_tenant_argument(actions.add_parser(
            "verify", help=_("Recompute every hash, check the chain of blocks against the signed checkpoints and "
                             "sign a new one; exit code 1 if anything was tampered with.")))
        add_tenant_argument(actions.add_parser(
            "seal", help=_("Seal the committed events no block holds yet into the next block (what Celery beat "
                           "does every few seconds).")))
        add_tenant_argument(actions.add_parser(
            "checkpoint", help=_("Seal, verify, then sign and store a checkpoint of the newest block (what Celery "
                                 "beat does every hour); exit code 1 if the trail does not verify.")))
        export = actions.add_parser("export", help=_("Stream the events (oldest first) as CSV or JSON Lines."))
        add_tenant_argument(export)
        export.add_argument("--format", choices=services.EXPORT_FORMATS, default="csv", dest="fmt")
        export.add_argument("--since", type=_time_option, metavar="ISO", help=_("Events at or after this time."))
        export.add_argument("--until", type=_time_option, metavar="ISO", help=_("Events before this time."))
        export.add_argument("--action", default="", metavar="ACTION", dest="action_filter",
                            help=_("An action or a pattern such as data.*.delete."))
        export.add_argument("--actor", default="", metavar="USERNAME")
        export.add_argument("--target-type", default="", metavar="TYPE", help=_("For example data.expense."))
        export.add_argument("--output", metavar="FILE", help=_("Write to this file (default: standard output)."))

    def handle(self, command, action, tenant, **options):
        with tenant_from_option(tenant):
            getattr(self, f"_{action}")(command, **options)

    def _verify(self, command, **options):
        result = services.verify()
        if not result.ok:
            raise CommandError(result.message, returncode=1)
        command.stdout.write(command.style.SUCCESS(result.message))
        self._write_checkpoint(command, result)

    def _seal(self, command, **options):
        block = services.seal_events()
        if block is None:
            command.stdout.write(_("Nothing to seal: no new event of a transaction that has ended."))
        else:
            command.stdout.write(_("Block %(block)d sealed: %(count)d events (seq %(first)d to %(last)d).") % {
                "block": block.number, "count": block.count, "first": block.first_seq, "last": block.last_seq})

    def _checkpoint(self, command, **options):
        self._write_checkpoint(command, None)

    @staticmethod
    def _write_checkpoint(command, verified: services.VerifyResult | None) -> None:
        try:
            checkpoint = services.write_checkpoint(verified)
        except services.TrailTampered as error:
            raise CommandError(str(error), returncode=1) from error
        if checkpoint is None:
            command.stdout.write(_("No new checkpoint: nothing new since the last one (or inside a transaction)."))
        else:
            command.stdout.write(_("Checkpoint of block %(block)d signed and stored as %(name)s.") % {
                "block": checkpoint.block, "name": checkpoint.name})

    def _export(self, command, fmt, since, until, action_filter, actor, target_type, output, **options):
        queryset = services.filter_events(since=since, until=until, action=action_filter, actor=actor,
                                          target_type=target_type)
        services.record(audit_actions.EXPORT, data={"format": fmt, "since": since and since.isoformat(),
                                              "until": until and until.isoformat(), "action": action_filter,
                                              "actor": actor, "target_type": target_type, "output": output or "-"})
        if not output:
            for block in services.iter_export(queryset, fmt):
                command.stdout.write(block, ending="")
            return
        progress = Progress(TextColumn(_("Exporting")), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=Console(file=sys.stderr), transient=False)
        with open(output, "w", encoding="utf-8", newline="") as out, progress:
            task = progress.add_task("export", total=queryset.count())
            written = services.export(out, queryset, fmt, progress=lambda rows: progress.advance(task, rows))
        command.stderr.write(_("%(count)d events written to %(file)s.") % {"count": written, "file": output})
