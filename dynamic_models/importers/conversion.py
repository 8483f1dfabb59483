"""What an importer makes of another product's data model: entity bodies for a bundle, the rows
the source holds, and a report of each source field (what it became, or why nothing)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from dynamic_models import formulas, runtime, services
from dynamic_models.keys import ENTITY_KEY_MAX, FIELD_KEY_MAX, key_errors
from dynamic_models.registries import field_type_registry
from metadata import bundles
from metadata.registries import definition_kind_registry


@dataclass
class FieldReport:
    """One field of the source: the field it became (`key`, `type`), or why none (`note`)."""

    entity: str
    source: str
    source_type: str
    key: str = ""
    type: str = ""
    note: str = ""

    @property
    def mapped(self) -> bool:
        return bool(self.type)

    def as_dict(self) -> dict:
        return {"entity": self.entity, "source": self.source, "source_type": self.source_type, "key": self.key,
                "type": self.type, "note": self.note}


@dataclass
class SourceRow:
    """A record of the source: its id there, its values by field key, and its links (field key ->
    ids of records of the related entity, as the source numbers them)."""

    id: object
    values: dict
    links: dict = field(default_factory=dict)


@dataclass
class Conversion:
    """Entity bodies (dependencies need not come first: bundles order them), the source's rows
    per entity key and a report per source field."""

    app: str
    bodies: dict[str, dict] = field(default_factory=dict)
    fields: list[FieldReport] = field(default_factory=list)
    rows: dict[str, list[SourceRow]] = field(default_factory=dict)

    def bundle(self) -> dict:
        """The bundle of the bodies, as an export writes them (normalized: the same source imports unchanged)."""
        return {"format": bundles.FORMAT, "format_version": bundles.FORMAT_VERSION, "app": self.app,
                "definitions": [{"kind": "entity", "key": key, "body": services.normalize_body(body)}
                                for key, body in self.bodies.items()]}

    def report(self, entity: str, source: str, source_type: str, **mapping) -> FieldReport:
        item = FieldReport(entity, source, source_type, **mapping)
        self.fields.append(item)
        return item


def field_id(*parts) -> str:
    """A field id that stays the same for the same source field, so importing again updates it."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:12]


def slug(name: str) -> str:
    """`Tone / Pacing` -> `tone_pacing`: lowercase ASCII words joined by underscores."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", ascii_name.lower())).strip("_")


class KeyMaker:
    """Keys for entities and fields from the source's names: valid, unique, within the length limits."""

    def __init__(self):
        self.entities: set[str] = set()
        self.fields: dict[str, set[str]] = {}

    def entity(self, name: str) -> str:
        key = self._valid(slug(name), "entity", ENTITY_KEY_MAX, self.entities, fallback="table")
        self.fields[key] = set()
        return key

    def field(self, entity: str, name: str) -> str:
        return self._valid(slug(name), "field", FIELD_KEY_MAX, self.fields[entity], fallback="field")

    @staticmethod
    def _valid(base: str, what: str, limit: int, taken: set[str], *, fallback: str) -> str:
        if not base or not base[0].isalpha():
            base = f"{fallback}_{base}".rstrip("_")
        base = base[:limit].rstrip("_")
        if key_errors(base, what=what, max_length=limit):
            base = f"{base[:limit - 6]}_{fallback}"
        key, number = base, 2
        while key in taken or key_errors(key, what=what, max_length=limit):
            suffix = f"_{number}"
            key, number = base[:limit - len(suffix)] + suffix, number + 1
        taken.add(key)
        return key


def set_entity_option(conversion: Conversion, body: dict, name: str, value, *, source: str, source_type: str,
                      what: str) -> None:
    """Set an entity option (`single`, `child_of`) if entities have it here, else report it unmapped."""
    report = conversion.report(body["key"], source, source_type)
    if name in definition_kind_registry.get("entity").schema["properties"]:
        body[name] = value
        report.key, report.type = name, what
    else:
        report.note = _("Entities of this workspace have no option %(option)s.") % {"option": name}


#: Types whose values the source may hold in any form: a column with one they refuse becomes text.
CHECKED_TYPES = ("phone", "email", "url")
#: Text longer than this is long text.
TEXT_MAX = 10000


def fit_values(conversion: Conversion) -> None:
    """Fit fields to the rows the source holds, which are kept as they are: a phone, email or URL
    column with a value its type refuses becomes text (reported with that value), and text is as
    long as its longest value (long text past TEXT_MAX)."""
    reports = {(report.entity, report.key): report for report in conversion.fields if report.mapped}
    for key, body in conversion.bodies.items():
        for spec in body["fields"]:
            values = [row.values[spec["key"]] for row in conversion.rows.get(key, ())
                      if isinstance(row.values.get(spec["key"]), str)]
            if not values:
                continue
            refused = _first_refused(key, spec, values) if spec["type"] in CHECKED_TYPES else ""
            if refused:
                report = reports.get((key, spec["key"]))
                spec["type"], spec["options"] = "text", {}
                if report is not None:
                    report.type, report.note = "text", _("Kept as text: not every value is a valid %(type)s "
                                                         "(%(refused)s).") % {"type": report.type, "refused": refused}
            longest = max(map(len, values))
            if spec["type"] == "text" and longest > spec["options"].get("max_length", 255):
                if longest > TEXT_MAX:
                    spec["type"], spec["options"] = "long_text", {}
                    if (key, spec["key"]) in reports:
                        reports[key, spec["key"]].type = "long_text"
                else:
                    spec["options"]["max_length"] = longest


def _first_refused(entity: str, spec: dict, values: list[str]) -> str:
    """The first of `values` that the field of `spec` refuses, with why ("" if none)."""
    model_field = field_type_registry.get(spec["type"]).get_model_field({**spec, "entity": entity})
    for value in values:
        try:
            model_field.clean(value, None)
        except ValidationError as error:
            return f"{value!r}: {' '.join(error.messages)}"
    return ""


def settle(conversion: Conversion) -> None:
    """Take out the fields whose design is invalid (a formula that does not check, options the
    type refuses, a lookup through many records), reporting each with the reason, until every body
    validates as far as the fields go. Entities of the same conversion count as published: the
    bundle publishes them first."""
    reports = {(report.entity, report.key): report for report in conversion.fields if report.mapped}
    bodies = {**runtime.published_entity_bodies(), **conversion.bodies}
    changed = True
    while changed:  # A field taken out may be what another entity's field reads: again until nothing changes.
        changed = False
        for key, body in conversion.bodies.items():
            changed = _settle_body(conversion, key, body, bodies, reports) or changed


def _settle_body(conversion: Conversion, key: str, body: dict, bodies: dict, reports: dict) -> bool:
    """Take the invalid fields out of one body; return whether there were any."""
    changed = False
    for _attempt in range(len(body["fields"]) + 1):
        bad = {index: _("The field type %(type)s is not available in this workspace.") % {"type": spec["type"]}
               for index, spec in enumerate(body["fields"]) if not field_type_registry.is_registered(spec["type"])}
        for error in [] if bad else services.design_errors(body):
            match = re.match(r"fields/(\d+)(/|$)", error.get("path", ""))
            if match is None:
                continue
            message = _still_wrong(error, body, body["fields"][int(match[1])], bodies)
            if message:
                bad.setdefault(int(match[1]), message)
        if not bad:
            break
        changed = True
        for index, message in bad.items():
            spec = body["fields"][index]
            report = reports.get((key, spec["key"]))
            if report is not None:
                report.key, report.type, report.note = "", "", message
            for row in conversion.rows.get(key, ()):
                row.values.pop(spec["key"], None)
                row.links.pop(spec["key"], None)
        body["fields"] = [spec for index, spec in enumerate(body["fields"]) if index not in bad]
        if body.get("display_field") not in {spec["key"] for spec in body["fields"]}:
            body.pop("display_field", None)
    return changed


def _still_wrong(error: dict, body: dict, spec: dict, bodies: dict[str, dict]) -> str:
    """The error's message, unless it is only that an entity of the conversion is not published yet
    (then what is wrong once it is, if anything)."""
    if error.get("code") != "unknown_entity":
        return error["message"]
    if spec["type"] == "relation":
        return "" if spec["options"].get("target") in bodies else error["message"]
    if spec["type"] in ("lookup", "rollup", "count"):
        found = formulas.related_path(body, spec, bodies)
        return str(found) if isinstance(found, str) else ""
    return ""
