"""Rules for entity and field keys (DM-8): they become table and column names, attributes of
records and names of the records API's filters."""

from __future__ import annotations

import builtins
import functools
import keyword
import re

from django.db import models
from django.utils.translation import gettext as _

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ENTITY_KEY_MAX = 40
FIELD_KEY_MAX = 50


@functools.cache
def record_attributes() -> frozenset[str]:
    """Every attribute name a record of an entity has without its fields: a field of that name
    would hide it, and the record would break (`save_base`, `from_db`, `lowcode_entity`).

    Found by introspection of Django's Model and of a record loaded from a model built as
    every entity's is (system fields, managers, DynamicRecord's methods, what loading sets),
    so what the model base gains is reserved at once.
    """
    from dynamic_models import runtime

    model = runtime.build_model(runtime.SnapshotApps(), {"key": "reserved", "fields": []})
    columns = [field.attname for field in model._meta.concrete_fields]
    record = model.from_db("default", columns, [None] * len(columns))
    return frozenset(dir(models.Model)) | frozenset(dir(record))


def query_parameters() -> frozenset[str]:
    """The records API's query parameters besides filters: a field of that name could not be filtered on."""
    from dynamic_models.api.parameters import RESERVED

    return RESERVED


#: PostgreSQL's reserved key words (SQL:2016 list as PostgreSQL reserves them).
SQL_RESERVED = {
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "delete",
    "insert",
    "update",
    "drop",
    "alter",
}


#: Names the `site` module adds for interactive sessions; no program refers to them.
_INTERACTIVE_BUILTINS = {"copyright", "credits", "exit", "help", "license", "quit"}


def python_builtins() -> frozenset[str]:
    """Python's built-in names (`list`, `type`, `id`...), kept from entity keys: ejected models and
    migrations name their classes after the key, and there a built-in name reads as Python's own."""
    return frozenset(name for name in dir(builtins) if name.islower() and not name.startswith("_")) \
        - _INTERACTIVE_BUILTINS


def key_errors(key: object, *, what: str, max_length: int) -> list[dict]:
    """Return why `key` cannot name an entity or field, as {"code", "message"} (empty when it can)."""
    if not isinstance(key, str) or not key:
        return [{"code": "required", "message": _("The %(what)s key is required.") % {"what": what}}]
    shown = key if len(key) <= 60 else key[:57] + "..."
    if len(key) > max_length:
        return [{"code": "max_length", "message": _("The %(what)s key %(key)r is longer than %(max)d characters.")
                 % {"what": what, "key": shown, "max": max_length}}]
    if not KEY_RE.match(key):
        return [{"code": "invalid", "message": _(
            "The %(what)s key %(key)r must start with a lowercase letter and hold only lowercase letters, "
            "digits and underscores.") % {"what": what, "key": shown}}]
    if "__" in key or key.endswith("_"):
        return [{"code": "invalid", "message": _(
            "The %(what)s key %(key)r may not contain a double underscore or end with an underscore.")
            % {"what": what, "key": key}}]
    if keyword.iskeyword(key) or keyword.issoftkeyword(key):
        return [{"code": "python_keyword", "message": _("%(key)r is a Python keyword and cannot be a %(what)s key.")
                 % {"what": what, "key": key}}]
    if key in SQL_RESERVED:
        return [{"code": "sql_reserved", "message": _("%(key)r is an SQL reserved word and cannot be a %(what)s key.")
                 % {"what": what, "key": key}}]
    if what == "entity" and key in python_builtins():
        return [{"code": "python_builtin", "message": _(
            "%(key)r is a built-in name of Python and cannot be an entity key.") % {"key": key}}]
    if what == "entity" and key in record_attributes():
        return [{"code": "reserved", "message": _(
            "%(key)r is a system field or method that every record has and cannot be an entity key.")
            % {"key": key}}]
    if what == "field" and key in record_attributes():
        return [{"code": "reserved", "message": _(
            "%(key)r is a system field or method that every record has and cannot be a field key.") % {"key": key}}]
    if what == "field" and key in query_parameters():
        return [{"code": "reserved_parameter", "message": _(
            "%(key)r is a query parameter of the records API (%(parameters)s) and cannot be a field key: it could "
            "not be used as a filter.") % {"key": key, "parameters": ", ".join(sorted(query_parameters()))}}]
    return []
