"""The end-user inbox (WF-4) and notification pages (WF-9) of the end-user site.

Thin shells: the tasks come from services.inbox, decisions go to services.complete (claim,
reassign, delegate likewise), a form task's form is the forms engine's, the record is shown
through rbac's column rules, notifications are read and marked through workflows.notifications.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from viewflow.workflow.models import Process, Task

from dynamic_models import records
from dynamic_models import runtime as dm_runtime
from forms_engine import rendering
from forms_engine import services as forms
from lowcode.site import MenuEntry, SitePart
from pages import queries
from rbac import columns as rbac_columns
from workflows import context, diagrams, notifications, runtime, services
from workflows.assignment import label_queues, may_complete, queues_of
from workflows.exceptions import WorkflowError
from workflows.models import Notification

PER_PAGE = 30
TABS = (("mine", gettext_lazy("My tasks")), ("claimable", gettext_lazy("Claimable")),
        ("delegated", gettext_lazy("Delegated")), ("done", gettext_lazy("Done")))
OUTCOME_LABELS = {"approved": gettext_lazy("Approved"), "rejected": gettext_lazy("Rejected"),
                  "completed": gettext_lazy("Completed")}


def site_part() -> SitePart:
    """The inbox's share of the end-user site: its pages, the Inbox link with its count, the bell."""
    return SitePart("workflows", urls={"inbox/": "workflows.urls"}, menu_entries=(
        MenuEntry(gettext_lazy("Inbox"), "workflows:inbox", badge="workflows.inbox.waiting_count"),
        MenuEntry(gettext_lazy("Notifications"), "workflows:notifications", badge="workflows.notifications.unread_count",
                  icon="workflows/bell.svg"),
    ))


def waiting_count(request) -> int:
    """The Inbox link's count: the user's open tasks and those their queues could claim."""
    return services.inbox(request.user).count() + services.inbox(request.user, kind="claimable").count()


# ---------------------------------------------------------------- the inbox


@dataclass
class InboxRow:
    task: Task
    title: str
    process: str
    record: str
    deadline: datetime.datetime | None
    overdue: bool


def deadline(task) -> datetime.datetime | None:
    """When the task is due: its escalation (expiry) moment, else its reminder's."""
    plan = task.data.get("deadline") or {}
    moment = plan.get("expire_at") or plan.get("remind_at")
    return parse_datetime(moment) if moment else None


def _records(processes) -> dict:
    """The records of `processes` by process id: one query per entity, whatever their number."""
    wanted: dict[str, dict] = {}
    for process in processes:
        entity = process.flow_class.body.get("entity")
        if entity and process.artifact_object_id:
            wanted.setdefault(entity, {}).setdefault(int(process.artifact_object_id), []).append(process.pk)
    found = {}
    for entity, by_id in wanted.items():
        for record in dm_runtime.get_model(entity).objects.filter(pk__in=by_id):
            found.update(dict.fromkeys(by_id[record.pk], record))
    return found


def inbox_rows(tasks) -> list[InboxRow]:
    now = timezone.now()
    found = _records([task.process for task in tasks])
    label_queues(tasks)
    rows = []
    for task in tasks:
        due = deadline(task)
        record = found.get(task.process_id)
        rows.append(InboxRow(task, task.flow_task.task_title, task.flow_task.flow_class.process_title,
                             str(record) if record is not None else "—", due,
                             due is not None and due < now and task.status in runtime.OPEN))
    return rows


@login_required
def inbox(request, kind: str = "mine"):
    if kind not in services.INBOX_KINDS:
        raise Http404(_("No such list."))
    page = Paginator(services.inbox(request.user, kind=kind), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "workflows/inbox.html", {
        "kind": kind, "tabs": [(key, label, reverse("workflows:inbox_kind", args=[key])) for key, label in TABS],
        "page": page, "rows": inbox_rows(list(page.object_list)),
    })


# ---------------------------------------------------------------- a task


def may_view(task, user) -> bool:
    """Who may open a task: its owner, the one who delegated it, members of its queue, those who
    decided it, and workflow managers."""
    return (task.owner_id == user.pk or task.data.get("delegated_from") == user.pk
            or bool(task.owner_permission and task.owner_permission in queues_of(user))
            or task.decisions.filter(user=user).exists() or services._may_manage(user))


def _task_or_404(request, pk) -> Task:
    task = Task.objects.filter(pk=pk, flow_task_type=services.HUMAN).select_related("process", "owner").first()
    if task is None or not may_view(task, request.user):
        raise Http404(_("No such task."))
    return task


def _record_fields(request, process):
    """The process's record as the user sees it under their column rules (masked stays masked;
    the task gives its people the record's row, whatever their list's scope)."""
    record = context.record_of(process)
    if record is None:
        return None, [], ""
    model = type(record)
    columns = queries.columns_of(model, rbac_columns.column_access(request.user, model, request=request))
    record = queries.with_display_data(request, model, model.objects.filter(pk=record.pk), columns).first()
    row = queries.present(request, model, [record], columns)[0]
    url = row.url if queries.scoped(request, model).filter(pk=record.pk).exists() else ""
    return record, row.cells, url


def _form_of(task, record):
    """A form task's form and the record it edits (the process's, when the form is bound to its entity)."""
    spec = task.flow_task.spec.get("task") or {}
    if spec.get("kind") != "form":
        return None, None
    form = forms.get_form(spec["form"])
    return form, record if record is not None and form.entity == record.lowcode_entity["key"] else None


def _task_page(request, task, *, form_data=None, form_errors=None, status=200):
    user = request.user
    process = task.process
    record, fields, record_url = _record_fields(request, process)
    form, form_record = _form_of(task, record)
    can_decide = may_complete(task, user)
    is_open = task.status in runtime.OPEN
    steps = services.history(process)
    label_queues([task, *(step["task"] for step in steps)])
    return render(request, "workflows/task.html", {
        "task": task, "title": task.flow_task.task_title, "process_title": process.flow_class.process_title,
        "record": record, "fields": [cell for cell in fields if not cell.column.is_file],
        "files": [cell for cell in fields if cell.column.is_file], "record_url": record_url,
        "deadline": deadline(task), "now": timezone.now(), "is_open": is_open,
        "can_decide": can_decide, "can_claim": can_decide and task.owner_id is None,
        "can_reassign": is_open and (task.owner_id == user.pk or services._may_manage(user)),
        "form_html": rendering.render(form, request=request, record=form_record, data=form_data, errors=form_errors)
        if form is not None and can_decide else "",
        "form_media": rendering.media() if form is not None and can_decide else "",
        "steps": steps,
        "record_history": records.history(record, user=user, request=request) if record is not None else [],
        "outcome_labels": OUTCOME_LABELS,
        "diagram": diagrams.process_diagram(process, steps),
    }, status=status)


@login_required
def task(request, pk):
    return _task_page(request, _task_or_404(request, pk))


def _refused(request, task, error) -> object:
    """A step the services refused: its reason as a message on the task's page (never a 500)."""
    messages.error(request, " ".join(error.messages) if isinstance(error, WorkflowError) else str(error))
    return redirect("workflows:task", pk=task.pk)


@login_required
@require_POST
def decide(request, pk):
    """Approve or reject with a comment, or submit a form task's form: services.complete, exactly once."""
    task = _task_or_404(request, pk)
    comment = request.POST.get("comment", "").strip()
    try:
        form, form_record = _form_of(task, context.record_of(task.process))
        if form is None:
            outcome = request.POST.get("outcome", "")
            services.complete(task, user=request.user, outcome=outcome, comment=comment)
        else:
            with transaction.atomic():
                result = forms.submit(form, request.POST, request.FILES, user=request.user, request=request,
                                      record=form_record)
                if not result.ok:
                    return _task_page(request, task, form_data=result.data, form_errors=result.errors,
                                      status=403 if result.forbidden else 400)
                outcome = "completed"
                data = None if form.entity else json.loads(json.dumps(result.data, cls=DjangoJSONEncoder))
                services.complete(task, user=request.user, outcome=outcome, comment=comment, data=data)
    except (WorkflowError, PermissionDenied) as error:
        return _refused(request, task, error)
    messages.success(request, _("%(task)s: %(outcome)s.") % {
        "task": task.flow_task.task_title, "outcome": OUTCOME_LABELS.get(outcome, outcome)})
    return redirect("workflows:inbox")


@login_required
@require_POST
def claim(request, pk):
    task = _task_or_404(request, pk)
    try:
        services.claim(task, user=request.user)
    except (WorkflowError, PermissionDenied) as error:
        return _refused(request, task, error)
    messages.success(request, _("The task is yours now."))
    return redirect("workflows:task", pk=task.pk)


@login_required
@require_POST
def reassign(request, pk):
    task = _task_or_404(request, pk)
    username = request.POST.get("to", "").strip()
    to = get_user_model().objects.filter(username=username, is_active=True).first()
    if to is None:
        messages.error(request, _("To: no active user %(name)r.") % {"name": username})
        return redirect("workflows:task", pk=task.pk)
    try:
        services.reassign(task, user=request.user, to=to)
    except (WorkflowError, PermissionDenied) as error:
        return _refused(request, task, error)
    messages.success(request, _("The task went to %(user)s.") % {"user": to.get_full_name() or to.get_username()})
    return redirect("workflows:inbox")


# ---------------------------------------------------------------- out of office


def _moment(value: str):
    parsed = parse_datetime(value) if value else None
    return timezone.make_aware(parsed) if parsed is not None and timezone.is_naive(parsed) else parsed


@login_required
def out_of_office(request):
    """Delegate one's tasks for a period (staff managing workflows: anyone's)."""
    users = get_user_model().objects.filter(is_active=True)
    manager = services._may_manage(request.user)
    errors, values = {}, {"user": request.user.get_username(), "to": "", "starts": "", "ends": ""}
    if request.method == "POST":
        values = {key: request.POST.get(key, "").strip() for key in values}
        who = users.filter(username=values["user"]).first() if manager else request.user
        to = users.filter(username=values["to"]).first()
        starts, ends = _moment(values["starts"]), _moment(values["ends"])
        if who is None:
            errors["user"] = [_("No active user %(name)r.") % {"name": values["user"]}]
        if to is None:
            errors["to"] = [_("No active user %(name)r.") % {"name": values["to"]}]
        for key, moment in (("starts", starts), ("ends", ends)):
            if moment is None:
                errors[key] = [_("Enter a date and time.")]
        if not errors:
            try:
                services.delegate(who, to, starts=starts, ends=ends, actor=request.user)
            except WorkflowError as error:
                errors = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
            else:
                messages.success(request, _("Tasks of %(user)s go to %(delegate)s in that period.") % {
                    "user": who, "delegate": to})
                return redirect("workflows:inbox")
    return render(request, "workflows/inbox_delegate.html", {
        "values": values, "errors": errors, "manager": manager,
        "usernames": list(users.order_by("username").values_list("username", flat=True)[:500]),
    }, status=400 if errors else 200)


# ---------------------------------------------------------------- processes and notifications


@login_required
def process(request, pk):
    """A process's link (notifications name it): its record's page, else the inbox."""
    found = Process.objects.filter(pk=pk).first()
    record = context.record_of(found) if found is not None else None
    if record is not None and queries.scoped(request, type(record)).filter(pk=record.pk).exists():
        return redirect("pages:detail", entity=record.lowcode_entity["key"], pk=record.pk)
    return redirect("workflows:inbox")


@login_required
def notification_list(request):
    page = Paginator(Notification.objects.filter(user=request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "workflows/notifications.html", {"page": page})


@login_required
def notification_open(request, pk):
    """Open a notification: it is read, and its link followed."""
    notification = Notification.objects.filter(pk=pk, user=request.user).first()
    if notification is None:
        raise Http404(_("No such notification."))
    notifications.mark_read(request.user, [notification.pk])
    if notification.link and url_has_allowed_host_and_scheme(notification.link, allowed_hosts=None):
        return redirect(notification.link)
    return redirect("workflows:notifications")


@login_required
@require_POST
def notifications_read(request):
    """Mark the posted notifications (`pk`, repeated) read, or all of them."""
    pks = [int(value) for value in request.POST.getlist("pk") if value.isdigit()] or None
    notifications.mark_read(request.user, pks)
    return redirect("workflows:notifications")
