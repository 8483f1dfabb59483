"""Expressions of entities: formula fields and cross-field rules (EX-1, DM-6).

Before a design is saved, `expression_errors()` checks every formula and rule against the
entity's fields (lowcode/expressions/checker.py): what is left to fail is a value on some
row, and that part is null for that row, in Python and in SQL alike. At runtime a
`Formula` is compiled on first use, never while models, admin or URLs are built, and a
formula that cannot run (published before these checks) is null instead of failing every
query of its entity. The preview counts the rows a new formula would give no value
(`formula_impact()`).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.core.exceptions import FieldError
from django.db import models
from django.db.models import Value
from django.utils.translation import gettext as _

from dynamic_models.field_types import RANGE_LOOKUPS, TEXT_LOOKUPS, ComputedType, FormulaType
from dynamic_models.registries import field_type_registry
from lowcode.expressions import (
    Expression,
    ExpressionError,
    ExpressionType,
    ExpressionValueError,
    compile_expression,
)
from lowcode.expressions.functions import output_field_of, to_numeric

logger = logging.getLogger(__name__)

#: The preview evaluates a new formula over at most this many rows to count its failures.
IMPACT_ROWS = 10_000


def _field_type(spec: dict, entity_key: str) -> ExpressionType | str:
    field_type = field_type_registry.get(spec["type"])
    try:
        result = field_type.expression_type({**spec, "entity": entity_key, "options": spec.get("options", {})})
    except (LookupError, TypeError, ValueError):
        result = None  # Options that do not build a field: the design's own errors say why.
    return result or _("The field “%(key)s” (%(type)s) cannot be used in expressions.") % {
        "key": spec["key"], "type": spec["type"]}


def expression_fields(body: dict, *, database: bool, formulas: bool = False) -> dict[str, ExpressionType | str]:
    """The type of each field of `body` as expressions read it, or why they cannot.

    :param database: the expression runs in SQL, where encrypted fields hold ciphertext.
    :param formulas: formula fields are readable, with the type of their value (scopes,
        which filter querysets that compute them); else they are not (formulas and rules
        read the stored values only).
    """
    columns: dict[str, ExpressionType | str] = {}
    for spec in body["fields"]:
        if spec["type"] == FormulaType.type:
            continue
        if database and spec.get("encrypted"):
            columns[spec["key"]] = _("The field “%(key)s” is encrypted: the database holds only its ciphertext.") % {
                "key": spec["key"]}
        else:
            columns[spec["key"]] = _field_type(spec, body["key"])
    result = dict(columns)
    if database:
        result.update(related_fields(body))
        columns.update(result)
    for spec in body["fields"]:
        if spec["type"] != FormulaType.type:
            continue
        result[spec["key"]] = _("“%(key)s” is a formula: repeat its expression instead.") % {"key": spec["key"]}
        if formulas:
            with contextlib.suppress(ExpressionError, KeyError):  # One that does not check stays unreadable.
                result[spec["key"]] = compile_expression(spec["options"]["expression"]).check(columns)
    return result


def expression_references(source) -> frozenset[str]:
    """The fields an expression reads; none if it does not parse (its own error says why)."""
    try:
        return compile_expression(source).references
    except ExpressionError:
        return frozenset()


def references(spec: dict) -> frozenset[str]:
    """The other fields of its entity that the field of `spec` reads."""
    options = spec.get("options") or {}
    if spec["type"] == FormulaType.type:  # `project.budget` reads the relation `project`.
        return frozenset(name.partition(".")[0] for name in expression_references(options.get("expression")))
    if isinstance(field_type_registry.get(spec["type"]), ComputedType) and "." not in str(options.get("relation")):
        return frozenset({str(options.get("relation"))})
    return frozenset()


def related_fields(body: dict) -> dict[str, ExpressionType | str]:
    """`relation.field` for the stored fields of the record each many-to-one or one-to-one
    relation of `body` points to: the database reads them through a join (`project.budget`)."""
    from dynamic_models import runtime

    bodies = {**runtime.published_entity_bodies(), body["key"]: body}
    result = {}
    for spec in body["fields"]:
        options = spec.get("options") or {}
        if not field_type_registry.get(spec["type"]).is_relation or options.get("cardinality") == "many_to_many" \
                or options.get("target") not in bodies:
            continue
        target = bodies[options["target"]]
        for target_spec in target["fields"]:
            target_options = target_spec.get("options") or {}
            if not field_type_registry.get(target_spec["type"]).has_column \
                    or target_options.get("cardinality") == "many_to_many":
                continue
            result[f"{spec['key']}.{target_spec['key']}"] = _("The field “%(key)s” is encrypted: the database holds "
                                                             "only its ciphertext.") % {"key": target_spec["key"]} \
                if target_spec.get("encrypted") else _field_type(target_spec, target["key"])
    return result


def related_value(body: dict, name: str, record: dict):
    """The value of `relation.field` for a record's values (its relation's id), read from the database."""
    from dynamic_models import runtime

    relation_key, _dot, field_key = name.partition(".")
    pk = record.get(relation_key)
    spec = next((item for item in body["fields"] if item["key"] == relation_key), None)
    if pk is None or spec is None:
        return None
    model = runtime.get_model(spec["options"]["target"])
    return model.all_objects.filter(pk=pk).values_list(field_key, flat=True).first()


def expression_errors(body: dict) -> list[dict]:
    """Check the formulas and rules of a valid-shaped entity body; errors as {"path", "code", "message"}.

    Formulas are computed by the database, per record: they read stored fields and no user.
    Rules are checked in Python on the record being saved and must be true or false.
    """
    errors = []
    formula_fields = expression_fields(body, database=True)
    for index, spec in enumerate(body["fields"]):
        source = spec.get("options", {}).get("expression")
        if spec["type"] == FormulaType.type and isinstance(source, str):
            errors += _errors(source, f"fields/{index}/options/expression", formula_fields, database=True)
    rule_fields = expression_fields(body, database=False)
    for index, rule in enumerate(body.get("rules", [])):
        errors += _errors(rule["expression"], f"rules/{index}/expression", rule_fields, database=False, condition=True)
    return errors


def _errors(source: str, path: str, fields: dict, **options) -> list[dict]:
    try:
        compile_expression(source).check(fields, **options)
    except ExpressionError as error:
        return [{"path": path, "code": error.code, "message": str(error)}]
    return []


@dataclass(frozen=True)
class ValueKind:
    """What the values of a field without a column are, for the filters and ordering they take.

    Computed per read, they have no index (none is possible): a filter or an ordering by one
    computes it for every record in scope (a correlated subquery per row for rollups and counts).
    """

    #: A model field of the values' type, not attached to the entity's model (filters take its values).
    field: models.Field
    #: The filter lookups that fit the values (those of the field read, for a lookup, min or max).
    lookups: tuple[str, ...]
    orderable: bool = True


#: The model field and filter lookups of each kind of formula value.
KIND_FIELDS = {"number": models.DecimalField, "text": models.TextField, "boolean": models.BooleanField,
               "date": models.DateField, "datetime": models.DateTimeField, "time": models.TimeField}
KIND_LOOKUPS = {"number": RANGE_LOOKUPS, "date": RANGE_LOOKUPS, "datetime": RANGE_LOOKUPS, "time": RANGE_LOOKUPS,
                "text": TEXT_LOOKUPS, "boolean": ("exact", "isnull")}


def value_kind(model, key: str) -> ValueKind | None:
    """What the values of `model`'s formula, lookup, rollup or count `key` are; None if records
    cannot be filtered or ordered by it (it cannot run, or its values are lists)."""
    return model.lowcode_formulas[key].value_kind(model)


def can_order(model, key: str) -> bool:
    """Whether records may be ordered by `model`'s formula, lookup, rollup or count `key`."""
    kind = value_kind(model, key)
    return kind is not None and kind.orderable


def annotated(queryset):
    """`queryset` with the values of its model's fields without a column (as the manager's records
    have them): for querysets of other managers that filters or ordering by those values read."""
    missing = {key: value.to_orm() for key, value in queryset.model.lowcode_formulas.items()
               if key not in queryset.query.annotations}
    return queryset.annotate(**missing) if missing else queryset


class Formula:
    """A formula field's expression at runtime, compiled and checked on first use.

    Building a model records the source only. A formula that does not pass today's check (a
    design published before expressions were checked) gives null, with a warning in the
    log, so that one bad formula never fails its entity's lists, let alone the tenant's pages.
    """

    is_number = False
    #: The type of its values (ExpressionType), once compiled; None if it cannot run.
    value_type = None

    def __init__(self, body: dict, key: str, source: str):
        self.body, self.key, self.source = body, key, source

    def __repr__(self):
        return f"<Formula {self.body['key']}.{self.key}: {self.source}>"

    def _cannot_run(self, error: Exception) -> None:
        logger.warning("Formula %s.%s cannot run, its value is null: %s", self.body["key"], self.key, error)

    @cached_property
    def expression(self) -> Expression | None:
        try:
            expression = compile_expression(self.source)
            self.value_type = expression.check(expression_fields(self.body, database=True))
            self.is_number = self.value_type.kind == "number"
        except ExpressionError as error:
            self._cannot_run(error)
            return None
        return expression

    def to_orm(self) -> models.Expression:
        """The database expression of the value, for `annotate()`; compiled when the query resolves it."""
        return _FormulaValue(self)

    def value_kind(self, model) -> ValueKind | None:
        """What its values are, for filters and ordering; None if it cannot run or gives lists."""
        if self.expression is None or self.value_type.kind not in KIND_FIELDS:
            return None
        kind = self.value_type.kind
        return ValueKind(KIND_FIELDS[kind](), KIND_LOOKUPS[kind])

    def evaluate(self, record: dict):
        """The value for a record's field values, computed in Python as the database would."""
        if self.expression is None:
            return None
        record = {**record, **{name: related_value(self.body, name, record)
                               for name in self.expression.references if "." in name and name not in record}}
        try:
            value = self.expression.evaluate({"record": record})
        except ExpressionError as error:
            self._cannot_run(error)
            return None
        # A number is a Decimal whichever way it was computed: the database's numeric (from
        # `coalesce(quantity, price)`) and an integer field's int (from `quantity`) read alike.
        return Decimal(value) if self.is_number and isinstance(value, int) else value


class _FormulaValue(models.Expression):
    """A formula's value in a query: its compiled expression, or null if it cannot run."""

    def __init__(self, formula: Formula):
        super().__init__()
        self.formula = formula

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        arguments = (query, allow_joins, reuse, summarize, for_save)
        if self.formula.expression is not None:
            try:
                value = self.formula.expression.to_orm()
                value = to_numeric(value) if self.formula.is_number else value
                resolved = value.resolve_expression(*arguments)
                output_field_of(resolved)  # Django finds mixed types here, else only when compiling the SQL.
                return resolved
            except (ExpressionError, FieldError) as error:
                self.formula._cannot_run(error)
        return Value(None, output_field=models.Field()).resolve_expression(*arguments)


def formula_impact(old_body: dict | None, new_body: dict) -> list[dict]:
    """Report the rows each new or changed formula would give no value, because it fails on them.

    The formula is evaluated in Python (as the database computes it) over the live rows'
    values, at most IMPACT_ROWS of them; a formula reading a field that this publish adds or
    converts cannot be counted yet, and the report says so. Items never block publishing.
    """
    if old_body is None:
        return []  # No table yet, no rows.
    from dynamic_models import runtime, schema

    live_specs = {spec["id"]: spec for spec in old_body["fields"]}
    new_specs = {spec["key"]: spec for spec in new_body["fields"]}
    model = None
    impact = []
    for spec in new_body["fields"]:
        live = live_specs.get(spec["id"])
        source = spec["options"]["expression"] if spec["type"] == FormulaType.type else None
        if source is None or (live is not None and live["type"] == spec["type"] and
                              live["options"].get("expression") == source):
            continue
        expression = compile_expression(source)
        columns = {}  # Field key in the new body -> key of its live column.
        for name in sorted(expression.references):
            if name not in new_specs:  # `relation.field`: read through a join, not counted here.
                columns = None
                break
            live_field = live_specs.get(new_specs[name]["id"])
            if live_field is None or live_field["type"] != new_specs[name]["type"]:
                columns = None
                break
            columns[name] = live_field["key"]
        if columns is None:
            impact.append(_impact_item(spec["key"], 0, [], _(
                "The formula %(key)s gives no value on rows where it fails (a division by zero, a date out of "
                "range...); it reads fields this publish adds or converts, so rows were not counted.")
                % {"key": spec["key"]}))
            continue
        model = model or runtime.get_model(new_body["key"])
        impact += _count_failures(model, spec["key"], expression, columns, schema.SAMPLE_SIZE)
    return impact


def _count_failures(model, key: str, expression: Expression, columns: dict[str, str], samples: int) -> list[dict]:
    rows = model.all_objects.filter(deleted_at__isnull=True)
    total = rows.count()
    failed, reason = [], ""
    for values in rows.order_by("pk").values("pk", *columns.values())[:IMPACT_ROWS]:
        record = {name: values[column] for name, column in columns.items()}
        try:
            expression.evaluate({"record": record}, strict=True)
        except ExpressionValueError as error:
            failed.append(values["pk"])
            reason = reason or error.message
    checked = min(total, IMPACT_ROWS)
    if not failed and checked == total:
        return []
    message = _("%(count)d rows would have no value for the formula %(key)s (%(reason)s).") % {
        "count": len(failed), "key": key, "reason": reason} if failed else ""
    if checked < total:
        message = " ".join(filter(None, [message, _("Only the first %(checked)d of %(total)d rows were checked.")
                                         % {"checked": checked, "total": total}]))
    return [_impact_item(key, len(failed), failed[:samples], message)]


def _impact_item(key: str, count: int, sample_ids: list[int], message: str) -> dict:
    return {"field": key, "code": "formula_null", "count": count, "sample_ids": sample_ids, "blocking": False,
            "message": message}


# --- Lookups, rollups and counts ------------------------------------------------------------


def computed_value(body: dict, spec: dict):
    """The runtime object of a field without a column (`lowcode_formulas` of its model): a
    Formula, or a RelatedValue (lookup, rollup, count); both annotate querysets and compute
    a record's value."""
    if spec["type"] == FormulaType.type:
        return Formula(body, spec["key"], spec["options"].get("expression", ""))
    return RelatedValue(body, spec)


class UnknownEntity(str):
    """Why a computed field cannot read: the entity it reads is not published (yet)."""

    code = "unknown_entity"


def related_path(body: dict, spec: dict, bodies: dict[str, dict]) -> dict | str:
    """Where a lookup, rollup or count reads, or why it cannot, in words.

    :returns: {"way": "one" (a many-to-one or one-to-one field of `body`), "many" (its
        many-to-many field) or "reverse" (another entity's many-to-one field pointing here),
        "entity": the key of the records read, "relation": the relation field's key (of `body`
        for one and many, of "entity" for reverse), "target": the spec of the field read, if any}.
    """
    bodies = {**bodies, body["key"]: body}
    options = spec.get("options") or {}
    path = str(options.get("relation", ""))
    owner_key, _dot, relation_key = path.rpartition(".")
    owner = bodies.get(owner_key or body["key"])
    if owner is None:
        return UnknownEntity(_("Unknown entity %(key)r: publish it first.") % {"key": owner_key})
    relation = next((item for item in owner["fields"] if item["key"] == relation_key), None)
    if relation is None or not field_type_registry.get(relation["type"]).is_relation:
        return _("%(path)s is not a relation.") % {"path": path}
    cardinality = (relation.get("options") or {}).get("cardinality", "many_to_one")
    if owner_key:
        if cardinality == "many_to_many" or relation["options"].get("target") != body["key"]:
            return _("%(path)s does not point to %(entity)s from one record: it cannot be read backwards.") % {
                "path": path, "entity": body["key"]}
        result = {"way": "reverse", "entity": owner_key, "relation": relation_key}
    else:
        result = {"way": "many" if cardinality == "many_to_many" else "one",
                  "entity": relation["options"].get("target"), "relation": relation_key}
    if result["way"] == "one" and spec["type"] != "lookup":
        return _("A rollup or count reads through a relation to many records (a many-to-many field, or "
                 "entity.field pointing here); through a relation to one record, use a lookup.")
    if "field" in options:
        target_body = bodies.get(result["entity"])
        if target_body is None:
            return UnknownEntity(_("Unknown entity %(key)r: publish it first.") % {"key": result["entity"]})
        target = next((item for item in target_body["fields"] if item["key"] == options["field"]), None)
        if target is None:
            return _("%(entity)s has no field %(key)r.") % {"entity": result["entity"], "key": options["field"]}
        target_type = field_type_registry.get(target["type"])
        if not target_type.has_column or (target.get("options") or {}).get("cardinality") == "many_to_many" \
                or target.get("encrypted"):
            return _("%(entity)s.%(key)s is not a stored value that the database can read (computed, "
                     "many-to-many or encrypted).") % {"entity": result["entity"], "key": target["key"]}
        value_type = _field_type(target, result["entity"])
        if options.get("function") in ("sum", "avg") and getattr(value_type, "kind", None) != "number":
            return _("%(function)s adds numbers; %(entity)s.%(key)s holds none.") % {
                "function": options["function"], "entity": result["entity"], "key": target["key"]}
        result["target"] = target
    return result


def related_errors(body: dict) -> list[dict]:
    """Check where each lookup, rollup and count of `body` reads (published entities and itself)."""
    from dynamic_models import runtime

    bodies = runtime.published_entity_bodies()
    errors = []
    for index, spec in enumerate(body["fields"]):
        if isinstance(field_type_registry.get(spec["type"]), ComputedType):
            found = related_path(body, spec, bodies)
            if isinstance(found, str):
                errors.append({"path": f"fields/{index}/options/relation",
                               "code": getattr(found, "code", "relation"), "message": str(found)})
    return errors


class RelatedValue:
    """A lookup, rollup or count at runtime: a subquery (or a join, for a lookup) that the
    database computes when the record is read; nothing is stored, nothing goes stale."""

    def __init__(self, body: dict, spec: dict):
        self.body, self.spec = body, spec
        self.key = spec["key"]

    def __repr__(self):
        return f"<{self.spec['type']} {self.body['key']}.{self.key}>"

    def to_orm(self) -> models.Expression:
        return _RelatedExpression(self)

    def path(self, model) -> dict | None:
        bodies = {other.lowcode_entity["key"]: other.lowcode_entity for other in model._meta.apps.get_models()
                  if getattr(other, "lowcode_entity", None)}
        found = related_path(self.body, self.spec, bodies)
        if isinstance(found, str):
            logger.warning("%r cannot run, its value is null: %s", self, found)
            return None
        return found

    def value_kind(self, model) -> ValueKind | None:
        """What its values are (see `value_kind()`): a count's whole numbers, a sum's or an
        average's numbers, else the values of the field read; none for a lookup through many."""
        found = self.path(model)
        if found is None or (self.spec["type"] == "lookup" and found["way"] != "one"):
            return None
        if self.spec["type"] == "count":
            return ValueKind(models.BigIntegerField(), RANGE_LOOKUPS)
        function = self.spec["options"].get("function")
        target = model._meta.apps.get_model("data", found["entity"])._meta.get_field(found["target"]["key"])
        if function in ("sum", "avg"):
            return ValueKind(models.DecimalField() if function == "avg" else target, RANGE_LOOKUPS)
        target_type = field_type_registry.get(found["target"]["type"])
        return ValueKind(target, tuple(target_type.filter_lookups(found["target"])),
                         target_type.can_order(found["target"]))

    def orm(self, model) -> models.Expression:
        """The value as an expression over rows of `model` (the entity's model of the query's snapshot)."""
        from django.contrib.postgres.aggregates import ArrayAgg
        from django.contrib.postgres.fields import ArrayField
        from django.db.models import DecimalField, F, Func, OuterRef, Subquery
        from django.db.models.functions import Coalesce

        found = self.path(model)
        if found is None:
            return Value(None, output_field=models.Field())
        options = self.spec["options"]
        if found["way"] == "one":
            return F(f"{found['relation']}__{options['field']}")
        related = model._meta.apps.get_model("data", found["entity"])
        rows = related.all_objects.filter(deleted_at__isnull=True).order_by()
        link = f"{self.body['key']}_{found['relation']}_set" if found["way"] == "many" else found["relation"]
        rows = rows.filter(**{link: OuterRef("pk")})
        if self.spec["type"] == "lookup":  # Through many records: their values, in the order they were created.
            target = related._meta.get_field(options["field"])
            values = rows.values(link).annotate(value=ArrayAgg(target.name, order_by="pk")).values("value")
            return Subquery(values, output_field=ArrayField(target))
        function = options.get("function", "count")
        if function == "count":
            return Subquery(rows.annotate(value=Func(F("pk"), function="COUNT")).values("value"),
                            output_field=models.BigIntegerField())
        target = related._meta.get_field(options["field"])
        output = DecimalField() if function == "avg" else target
        aggregate = Subquery(rows.annotate(value=Func(F(target.name), function=function.upper(),
                                                      output_field=output)).values("value"), output_field=output)
        return Coalesce(aggregate, Value(0), output_field=output) if function == "sum" else aggregate

    def evaluate(self, record: dict):
        """The value for a record's field values (a record not read through the manager, or changed)."""
        from dynamic_models import runtime

        model = runtime.get_model(self.body["key"])
        found = self.path(model)
        if found is None:
            return None
        if found["way"] == "one":
            related = model._meta.apps.get_model("data", found["entity"])
            pk = record.get(found["relation"])
            return None if pk is None else \
                related.all_objects.filter(pk=pk).values_list(self.spec["options"]["field"], flat=True).first()
        if record.get("id") is None:
            return 0 if self.spec["options"].get("function", "count") in ("count", "sum") else None
        return model.all_objects.filter(pk=record["id"]).annotate(value=self.to_orm()) \
            .values_list("value", flat=True).first()


class _RelatedExpression(models.Expression):
    """A lookup's, rollup's or count's value in a query, built for the query's model."""

    def __init__(self, related: RelatedValue):
        super().__init__()
        self.related = related

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False):
        return self.related.orm(query.model).resolve_expression(query, allow_joins, reuse, summarize, for_save)
