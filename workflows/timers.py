"""Deadlines of user tasks (WF-5): when a task is reminded and when it expires.

The plan sits in the task's `data["deadline"]` ({"remind_at", "expire_at", "reminded",
"expired"}); viewflow's indexed `scheduled` column holds the next moment still to come, so
`services.tick(now)` finds due tasks with one indexed query (timer nodes use it the same way).
"""

from __future__ import annotations

import datetime

from django.utils.dateparse import parse_duration

#: (moment key, done flag) in the order they come due.
STEPS = (("remind_at", "reminded"), ("expire_at", "expired"))


def duration(text: str) -> datetime.timedelta:
    """An ISO 8601 duration (P2D, PT4H, P1DT12H) as validation accepted it."""
    return parse_duration(text)


def schedule(task, spec: dict, since: datetime.datetime) -> None:
    """Plan the deadline of a new (or newly escalated) task of node `spec` from `since`."""
    deadline = spec.get("deadline") or {}
    plan = {}
    if deadline.get("remind_after"):
        plan["remind_at"] = (since + duration(deadline["remind_after"])).isoformat()
    if deadline.get("escalate_after"):
        plan["expire_at"] = (since + duration(deadline["escalate_after"])).isoformat()
    if plan:
        task.data["deadline"] = plan
    else:
        task.data.pop("deadline", None)
    reschedule(task)


def reschedule(task) -> None:
    """Point `scheduled` at the next step of the plan still to come (None: nothing left)."""
    plan = task.data.get("deadline") or {}
    pending = [plan[moment] for moment, done in STEPS if plan.get(moment) and not plan.get(done)]
    task.scheduled = datetime.datetime.fromisoformat(min(pending)) if pending else None


def due_steps(task, now: datetime.datetime) -> list[str]:
    """Mark the steps of the plan due at `now` done and return them ("remind_at", "expire_at")."""
    plan, due = task.data.get("deadline") or {}, []
    for moment, done in STEPS:
        if plan.get(moment) and not plan.get(done) and datetime.datetime.fromisoformat(plan[moment]) <= now:
            plan[done] = True
            due.append(moment)
    reschedule(task)
    return due
