"""Import a conversion: its bundle through the normal bundle import (preview, conflicts, all or
nothing), then the source's rows, in one transaction that a dry run rolls back."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils.translation import gettext as _
from rest_framework import serializers

from dynamic_models import runtime, transfer
from dynamic_models.importers.conversion import Conversion
from metadata import bundles
from metadata.exceptions import BundleError, InvalidBundle


@dataclass
class ImportResult:
    """What importing a conversion did (or, dry, would do): the bundle's report per definition,
    each source field's mapping, and per entity how many rows were imported and which failed."""

    dry_run: bool
    definitions: list[dict]
    fields: list[dict]
    rows: list[dict] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(row["action"] in bundles.REFUSED for row in self.definitions) or \
            any(item["errors"] for item in self.rows)

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "refused": self.refused, "definitions": self.definitions,
                "fields": self.fields, "rows": self.rows}


def run(conversion: Conversion, *, dry_run: bool, author=None) -> ImportResult:
    """Import `conversion` into the current tenant, all or nothing; a dry run changes nothing.

    The rows go in after every entity is published: first their values, then their links,
    which may point at records of any entity of the conversion (cycles included).
    """
    fields = [report.as_dict() for report in conversion.fields]
    tenant = connection.tenant
    tokens = dict(tenant.definition_versions)
    kept = False
    try:
        with transaction.atomic():
            try:
                definitions = bundles.import_bundle(conversion.bundle(), dry_run=False, author=author)
            except BundleError as error:  # Rolled back by the bundle import; its report says why.
                return ImportResult(dry_run, error.report, fields)
            except InvalidBundle as error:  # Definitions the bundle format refuses (a cycle, a size).
                return ImportResult(dry_run, [{"kind": "bundle", "key": conversion.app, "action": bundles.Action.ERROR,
                                               "message": str(error), "preview": None}], fields)
            new = {row["key"] for row in definitions if row["kind"] == "entity" and row["action"] == bundles.Action.CREATE}
            result = ImportResult(dry_run, definitions, fields, _import_rows(conversion, new, author))
            kept = not (dry_run or result.refused)
            if not kept:
                transaction.set_rollback(True)
                for item in result.rows:  # Valid rows (counted), but none stays.
                    item["created"] = 0
    finally:
        if not kept:
            # Rolled-back publishes left the tenant's tokens and cached content types of models
            # that no longer exist (as bundles.import_bundle forgets them).
            tenant.definition_versions = tokens
            ContentType.objects.clear_cache()
    return result


def _import_rows(conversion: Conversion, new: set[str], author) -> list[dict]:
    """Rows go into the entities this import creates: importing the same source again adds none twice."""
    reports, new_ids = [], {}
    for key, rows in conversion.rows.items():
        if not rows or key not in new:
            continue
        model = runtime.get_model(key)
        last = model.all_objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        report = transfer.import_rows(key, [(number, row.values) for number, row in enumerate(rows, 1)],
                                      user=author)
        created = list(model.all_objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True))
        new_ids[key] = dict(zip((row.id for row in rows), created, strict=False)) if report["created"] else {}
        reports.append({"entity": key, "total": report["total"], "valid": report["valid"], "created": report["created"],
                        "errors": report["errors"], "links": 0, "dangling_links": 0})
    by_entity = {item["entity"]: item for item in reports}
    for key, rows in conversion.rows.items():
        if key in by_entity and any(row.links for row in rows) and by_entity[key]["created"]:
            _link(key, rows, new_ids, by_entity[key], author)
    return reports


def _link(key: str, rows, new_ids: dict, report: dict, author) -> None:
    """Set the relations of the imported rows of `key` to the imported records they link to."""
    model = runtime.get_model(key)
    targets = {spec["key"]: spec["options"] for spec in model.lowcode_entity["fields"] if spec["type"] == "relation"}
    serializer_class = transfer.record_serializer(key)
    context = {"request": None, "user": author, "fields": None, "expand": set()}
    for number, row in enumerate(rows, 1):
        values = {}
        for name, source_ids in row.links.items():
            known = new_ids.get(targets[name]["target"], {})
            ids = [known[source_id] for source_id in source_ids if source_id in known]
            report["dangling_links"] += len(source_ids) - len(ids)
            many = targets[name].get("cardinality") == "many_to_many"
            if ids or many:
                values[name] = ids if many else ids[0]
                report["links"] += len(ids)
        if not values:
            continue
        record = model.objects.get(pk=new_ids[key][row.id])
        serializer = serializer_class(record, data=values, partial=True, context=context)
        try:
            serializer.is_valid(raise_exception=True)
            serializer.save()
        except serializers.ValidationError as error:
            report["errors"].append({"row": number, "errors": {"links": [
                {"code": "invalid", "message": _("Links not set: %(error)s") % {"error": error.detail}}]}})
