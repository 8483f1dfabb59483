"""What workflows react to: form submissions and record events start processes (WF-1); viewflow's
own signals finish processes (audit, process_finished, call activities) and report failed steps."""

from __future__ import annotations

from django.db import transaction


def connect() -> None:
    from viewflow.workflow.signals import flow_finished, task_failed

    from dynamic_models.signals import demo_seeded, record_created, record_updated
    from forms_engine.signals import form_submitted

    form_submitted.connect(on_form_submitted, dispatch_uid="workflows.form_submitted")
    record_created.connect(on_record_created, dispatch_uid="workflows.record_created")
    record_updated.connect(on_record_updated, dispatch_uid="workflows.record_updated")
    demo_seeded.connect(on_demo_seeded, dispatch_uid="workflows.demo_seeded")
    flow_finished.connect(on_flow_finished, dispatch_uid="workflows.flow_finished")
    task_failed.connect(on_task_failed, dispatch_uid="workflows.task_failed")


def _ours(flow_class) -> bool:
    from workflows.runtime import WorkflowFlow

    return isinstance(flow_class, type) and issubclass(flow_class, WorkflowFlow)


def on_form_submitted(sender, *, form, record=None, user=None, **kwargs) -> None:
    from workflows import services

    services.start_for_form(form.key, record, user=user)


def on_record_created(sender, *, record, user=None, **kwargs) -> None:
    from workflows import services

    services.start_for_record("created", record, user=user)


def on_record_updated(sender, *, record, user=None, **kwargs) -> None:
    from workflows import services

    services.start_for_record("updated", record, user=user)


def on_demo_seeded(sender, *, results, **kwargs) -> None:
    from workflows import seed

    seed.start_demo_processes(results)


def on_flow_finished(sender, *, process, **kwargs) -> None:
    from viewflow.workflow.models import Process

    from audit import services as audit
    from workflows import audit_actions, context, runtime, signals

    if not _ours(sender):
        return
    outcome = process.data.get("result", "completed")
    audit.record(audit_actions.PROCESS_FINISH, target=process, actor=context.system_user(),
                 data={"outcome": outcome})
    transaction.on_commit(lambda: signals.process_finished.send(sender=Process, process=process, outcome=outcome))
    if process.parent_task_id:
        runtime.resume_parent(process)


def on_task_failed(sender, *, process, task, **kwargs) -> None:
    from audit import services as audit
    from workflows import audit_actions, context

    if _ours(sender):
        audit.record(audit_actions.TASK_FAIL, target=task, actor=context.system_user(), result="error",
                     data={"error": task.data.get("_exception", {}).get("title", "")})
