"""The runtime Flow classes of published workflows, one per tenant, key and version.

viewflow imports a process's flow by its dotted path (`workflows/flows.F_acme_expense_approval_v2_1a2b3c4d`);
a class this process has not built yet is rebuilt from its Definition on first access, in the
tenant the connection is on (see workflows.runtime for what a class holds).
"""

from __future__ import annotations

import re
import threading

from django.db import connection

from workflows import runtime

_CLASS_NAME = re.compile(r"^F_(?P<rest>.+)_v(?P<version>\d+)_(?P<checksum>[0-9a-f]{8})$")
_build_lock = threading.Lock()


def flow_class(definition) -> type[runtime.WorkflowFlow]:
    """The Flow class of a published (or archived) definition, built once per process."""
    name = runtime.class_name(definition)
    existing = globals().get(name)
    if existing is None:
        with _build_lock:
            existing = globals().get(name)
            if existing is None:
                existing = runtime.build(definition, name)
                globals()[name] = existing
    return existing


def published_flow(key: str) -> type[runtime.WorkflowFlow] | None:
    """The Flow class of the published version of workflow `key` (None: not published)."""
    from metadata import services as metadata

    definition = metadata.get_published("workflow", key)
    return flow_class(definition) if definition is not None else None


def __getattr__(name: str):
    """Rebuild class `name` of the connection's tenant from its definition (AttributeError: none)."""
    from metadata.models import Definition

    prefix = f"F_{connection.schema_name}_"
    match = _CLASS_NAME.match(name) if name.startswith(prefix) else None
    if match is None:
        raise AttributeError(name)
    key = match["rest"][len(prefix) - 2:]
    definition = Definition.objects.filter(kind="workflow", key=key, version=int(match["version"]),
                                           checksum__startswith=match["checksum"]).first()
    if definition is None:
        raise AttributeError(name)
    return flow_class(definition)
