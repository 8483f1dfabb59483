"""Workflow monitoring in admin (WF-8): the instance list with filters, an instance's page (the
diagram with done, active and pending nodes, its timeline, variables and audit events), the
statistics of a workflow as charts, and the staff actions (cancel, retry a failed service task,
move a token), each confirmed on a page of its own and done by workflows.services (which audits).

It replaces viewflow's own admin of processes. Who may: workflows.monitoring.may_monitor.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from viewflow.workflow.models import Process, Task
from viewflow.workflow.status import STATUS

from workflows import bpmn, context, monitoring, services
from workflows.assignment import label_queues
from workflows.exceptions import WorkflowError

NAME = "viewflow_process"
PAGE_SIZE = 50


class InstanceFilterForm(forms.Form):
    workflow = forms.ChoiceField(label=gettext_lazy("Workflow"), required=False)
    version = forms.IntegerField(label=gettext_lazy("Version"), required=False, min_value=1)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    started_from = forms.DateField(label=gettext_lazy("Started from"), required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}))
    started_until = forms.DateField(label=gettext_lazy("Started until"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    record = forms.IntegerField(label=gettext_lazy("Record id"), required=False, min_value=1)
    task = forms.ChoiceField(label=gettext_lazy("Active task"), required=False)

    def __init__(self, data=None):
        super().__init__(data)
        everything = [("", _("All"))]
        self.fields["workflow"].choices = everything + monitoring.workflow_choices()
        self.fields["status"].choices = everything + monitoring.status_choices()
        workflow = (data or {}).get("workflow", "")
        self.fields["task"].choices = everything + monitoring.node_choices(
            workflow if workflow in dict(monitoring.workflow_choices()) else "")

    def filters(self) -> monitoring.InstanceFilter:
        return monitoring.InstanceFilter(**self.cleaned_data)


class MoveTokenForm(forms.Form):
    node = forms.ChoiceField(label=gettext_lazy("Move the token to"))

    def __init__(self, process, data=None):
        super().__init__(data)
        self.fields["node"].choices = monitoring.move_targets(process)


class ProcessMonitorAdmin(admin.ModelAdmin):
    """Workflow instances: no add, change or delete; staff act through the confirmed actions."""

    def has_module_permission(self, request):
        return monitoring.may_monitor(request.user)

    def has_view_permission(self, request, obj=None):
        return monitoring.may_monitor(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _check(self, request) -> None:
        if not monitoring.may_monitor(request.user):
            raise PermissionDenied(_("Only staff who monitor workflows may see this page."))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("statistics/", wrap(self.statistics_view), name=f"{NAME}_statistics"),
            path("statistics/<str:key>/", wrap(self.statistics_view), name=f"{NAME}_statistics"),
            path("<int:pk>/cancel/", wrap(self.cancel_view), name=f"{NAME}_cancel"),
            path("<int:pk>/retry/<int:task_pk>/", wrap(self.retry_view), name=f"{NAME}_retry"),
            path("<int:pk>/move/", wrap(self.move_view), name=f"{NAME}_move"),
            *super().get_urls(),
        ]

    def _page(self, request, template: str, title: str, status: int = 200, **extra):
        return TemplateResponse(request, template, {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra},
            status=status)

    def _process(self, pk) -> Process:
        process = Process.objects.filter(pk=pk, flow_class__startswith="workflows/flows.").first() \
            if str(pk).isdigit() else None
        if process is None:
            raise Http404(_("There is no workflow instance %(id)s.") % {"id": pk})
        return process

    # ---- The list ----

    def changelist_view(self, request, extra_context=None):
        self._check(request)
        form = InstanceFilterForm(request.GET or None)
        if form.is_bound and not form.is_valid():
            return self._page(request, "workflows/monitor_list.html", _("Workflow instances"), status=400,
                              form=form, page=None)
        filters = form.filters() if form.is_bound else monitoring.InstanceFilter()
        page = Paginator(monitoring.instances(filters), PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = monitoring.attach_records(page.object_list)
        query = request.GET.copy()
        query.pop("page", None)
        return self._page(request, "workflows/monitor_list.html", _("Workflow instances"), form=form, page=page,
                          query=query.urlencode(), statistics_key=filters.workflow)

    # ---- One instance ----

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._check(request)
        process = self._process(object_id)
        flow = process.flow_class
        history = services.history(process)
        label_queues(step["task"] for step in history)
        diagram = {"xml": bpmn.export(flow.body, key=flow.key), "states": monitoring.node_states(history),
                   "text": {"done": _("Done"), "active": _("Active"), "pending": _("Pending"), "failed": _("Failed")}}
        return self._page(
            request, "workflows/monitor_instance.html",
            _("%(workflow)s #%(id)s") % {"workflow": flow.process_title, "id": process.pk},
            process=process, original=process, flow=flow, record=context.record_of(process), history=history,
            diagram=diagram, running=process.status == "NEW",
            failed=[step["task"] for step in history if step["status"] == STATUS.ERROR],
            variables=monitoring.readable(process.data),
            events=monitoring.audit_trail(process, history))

    # ---- Staff actions: a confirmation page, then the service ----

    def _act(self, request, process, action, *, done: str, title: str, question: str, form=None):
        """GET: the confirmation page; POST (confirmed): run `action`, say `done`, back to the instance."""
        if request.method == "POST" and (form is None or form.is_valid()):
            try:
                action()
            except WorkflowError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
            else:
                self.message_user(request, done, messages.SUCCESS)
            return redirect(f"admin:{NAME}_change", process.pk)
        return self._page(request, "workflows/monitor_confirm.html", title, status=400 if form and form.errors else 200,
                          process=process, original=process, question=question, form=form)

    def cancel_view(self, request, pk: int):
        self._check(request)
        process = self._process(pk)
        return self._act(
            request, process, lambda: services.cancel(process, user=request.user), done=_("The instance was cancelled."),
            title=_("Cancel instance #%(id)s") % {"id": process.pk},
            question=_("Cancel this instance? Its open tasks are cancelled and it does not go on."))

    def retry_view(self, request, pk: int, task_pk: int):
        self._check(request)
        process = self._process(pk)
        task = Task.objects.filter(pk=task_pk, process=process).first()
        if task is None:
            raise Http404(_("There is no task %(id)s in this instance.") % {"id": task_pk})
        return self._act(
            request, process, lambda: services.retry(task, user=request.user), done=_("The task was run again."),
            title=_("Retry task %(task)s") % {"task": task.flow_task.task_title},
            question=_("Run the failed task “%(task)s” again?") % {"task": task.flow_task.task_title})

    def move_view(self, request, pk: int):
        self._check(request)
        process = self._process(pk)
        form = MoveTokenForm(process, request.POST if request.method == "POST" else None)
        return self._act(
            request, process,
            lambda: services.move_token(process, form.cleaned_data["node"], user=request.user),
            done=_("The token was moved."),
            title=_("Move the token of instance #%(id)s") % {"id": process.pk},
            question=_("Cancel the open tasks of this instance and go on from the chosen node?"), form=form)

    # ---- Statistics ----

    def statistics_view(self, request, key: str = ""):
        self._check(request)
        workflows = monitoring.workflow_choices()
        if not key:
            if not workflows:
                return self._page(request, "workflows/monitor_statistics.html", _("Workflow statistics"),
                                  workflows=workflows, statistics=None)
            return redirect(f"admin:{NAME}_statistics", workflows[0][0])
        if key not in dict(workflows):
            raise Http404(_("There is no workflow %(key)s.") % {"key": key})
        statistics = monitoring.statistics(key)
        for task in statistics["tasks"]:
            task.update(average_hours=_hours(task["average"]), p95_hours=_hours(task["p95"]))
        return self._page(request, "workflows/monitor_statistics.html",
                          _("Statistics of %(workflow)s") % {"workflow": statistics["label"]}, key=key,
                          workflows=workflows, statistics=statistics, chart=_chart_data(statistics))


def _hours(seconds):
    return round(seconds / 3600, 2) if seconds is not None else None


def _chart_data(statistics: dict) -> dict:
    """What static/workflows/monitor.js draws: labels and series, with their translated names."""
    tasks = statistics["tasks"]
    return {
        "durations": {"labels": [task["label"] for task in tasks],
                      "series": [{"name": _("Average (hours)"), "values": [task["average_hours"] for task in tasks]},
                                 {"name": _("95th percentile (hours)"), "values": [task["p95_hours"] for task in tasks]}]},
        "per_day": {"labels": statistics["days"],
                    "series": [{"name": _("Started"), "values": statistics["started_per_day"]},
                               {"name": _("Completed"), "values": statistics["completed_per_day"]}]},
        "overdue": {"labels": [task["label"] for task in tasks],
                    "series": [{"name": _("Overdue tasks"), "values": [task["overdue"] for task in tasks]}]},
    }


if admin.site.is_registered(Process):
    admin.site.unregister(Process)  # viewflow's own list of processes
# viewflow's task admin edits task rows directly, past the services and the audit trail: tasks
# are seen and acted on through an instance's page (and the inbox).
if admin.site.is_registered(Task):
    admin.site.unregister(Task)
admin.site.register(Process, ProcessMonitorAdmin)
