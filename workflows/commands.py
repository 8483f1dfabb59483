"""`manage.py lowcode workflow list|start|tick --tenant T`."""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table
from viewflow.workflow.models import Process

from lowcode.cli import TenantActionsSubcommand, add_tenant_argument
from workflows import services
from workflows.exceptions import WorkflowError


def _moment(value: str) -> datetime.datetime:
    moment = parse_datetime(value)
    if moment is None or moment.tzinfo is None:
        raise CommandError(_("%(value)r is not a date and time with a time zone, e.g. 2026-01-31T09:00:00+00:00.")
                           % {"value": value})
    return moment


class WorkflowCommand(TenantActionsSubcommand):
    type = "workflow"
    help = "List running workflow processes, start one, or fire due timers and deadlines."
    errors = (WorkflowError, LookupError)

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        listing = actions.add_parser("list", help=_("List the processes (newest first)."))
        add_tenant_argument(listing)
        listing.add_argument("--status", choices=["NEW", "DONE", "CANCELED"], help=_("Only processes in this status."))
        listing.add_argument("--limit", type=int, default=50)
        start = actions.add_parser("start", help=_("Start the published version of a workflow on a record."))
        add_tenant_argument(start)
        start.add_argument("key", help=_("The workflow's key."))
        start.add_argument("--record", type=int, help=_("The id of the record of the workflow's entity."))
        start.add_argument("--user", help=_("Start as this user (default: the workflow user)."))
        tick = actions.add_parser("tick", help=_("Fire due timers, reminders and escalations now."))
        add_tenant_argument(tick)
        tick.add_argument("--now", type=_moment, help=_("Pretend it is this moment (ISO 8601 with time zone)."))

    def _list(self, command, *, status, limit, **options):
        processes = Process.objects.order_by("-created", "-pk")
        if status:
            processes = processes.filter(status=status)
        table = Table()
        for column in (_("Id"), _("Workflow"), _("Status"), _("Result"), _("Record"), _("Started")):
            table.add_column(column)
        for process in processes[:limit]:
            flow = process.flow_class
            table.add_row(str(process.pk), f"{flow.key} v{flow.version}" if flow else "?", process.status,
                          str(process.data.get("result", "")), str(process.artifact_object_id or ""),
                          process.created.isoformat(timespec="seconds"))
        Console(file=command.stdout, width=140).print(table)

    def _start(self, command, *, key, record, user, **options):
        from dynamic_models import runtime as dm_runtime
        from workflows import flows

        flow = flows.published_flow(key)
        if flow is None:
            raise WorkflowError(_("No published workflow %(key)r.") % {"key": key})
        instance = None
        if record is not None:
            entity = flow.body.get("entity")
            instance = dm_runtime.get_model(entity).objects.filter(pk=record).first() if entity else None
            if instance is None:
                raise CommandError(_("No %(entity)s record %(id)s.") % {"entity": entity, "id": record})
        actor = get_user_model().objects.get(username=user) if user else None
        process = services.start(key, instance, user=actor)
        command.stdout.write(command.style.SUCCESS(_("Started process %(id)s of %(key)s v%(version)s.")
                                                   % {"id": process.pk, "key": key, "version": flow.version}))

    def _tick(self, command, *, now, **options):
        counts = services.tick(now)
        command.stdout.write(_("Timers fired: %(timers)d, reminders: %(reminders)d, expired tasks: %(expired)d.")
                             % counts)
