"""Rules for entity and field keys (DM-8): they become table and column names."""

from __future__ import annotations

import keyword
import re

from django.utils.translation import gettext as _

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
ENTITY_KEY_MAX = 40
FIELD_KEY_MAX = 50
#: Columns and attributes every runtime model has.
SYSTEM_NAMES = {
    "id",
    "pk",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "deleted_at",
    "objects",
    "all_objects",
    "delete",
    "save",
    "restore",
    "clean",
    "full_clean",
}
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


def key_errors(key: object, *, what: str, max_length: int) -> list[str]:
    """Return why `key` cannot name an entity or field (empty when it can)."""
    if not isinstance(key, str) or not key:
        return [_("The %(what)s key is required.") % {"what": what}]
    shown = key if len(key) <= 60 else key[:57] + "..."
    if len(key) > max_length:
        return [
            _("The %(what)s key %(key)r is longer than %(max)d characters.")
            % {"what": what, "key": shown, "max": max_length}
        ]
    if not KEY_RE.match(key):
        return [
            _(
                "The %(what)s key %(key)r must start with a lowercase letter and hold only lowercase letters, "
                "digits and underscores."
            )
            % {"what": what, "key": shown}
        ]
    if "__" in key or key.endswith("_"):
        return [
            _("The %(what)s key %(key)r may not contain a double underscore or end with an underscore.")
            % {"what": what, "key": key}
        ]
    if keyword.iskeyword(key) or keyword.issoftkeyword(key):
        return [_("%(key)r is a Python keyword and cannot be a %(what)s key.") % {"what": what, "key": key}]
    if key in SQL_RESERVED:
        return [_("%(key)r is an SQL reserved word and cannot be a %(what)s key.") % {"what": what, "key": key}]
    if what == "field" and key in SYSTEM_NAMES:
        return [_("%(key)r is a system field of every entity and cannot be a field key.") % {"key": key}]
    return []
