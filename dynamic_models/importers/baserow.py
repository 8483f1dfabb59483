"""Baserow templates and exports (the JSON of `backend/templates/*.json`, or a workspace export's
`export`) as a conversion: each table an entity, each field its equivalent, the rows kept.

Link fields come in pairs in Baserow (a link and its reverse in the related table): one becomes a
relation (the one more lookups and rollups read through, else the first), the other is that
relation seen from the other side (related records) and no field of its own. Formulas are translated where our expression language has the same
functions; those it cannot check are reported with the checker's reason.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import suppress

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from dynamic_models.importers.conversion import Conversion, KeyMaker, SourceRow, field_id, slug

#: Baserow's option colours, as the designer's hex colours.
COLORS = {
    "blue": "#4f8fdb", "dark-blue": "#2461b1", "light-blue": "#b7d2f3", "green": "#4fa364",
    "dark-green": "#2e7d43", "light-green": "#c2e8cb", "orange": "#f2994a", "dark-orange": "#d1721b",
    "light-orange": "#fbd9b4", "red": "#e0514f", "dark-red": "#b22a28", "light-red": "#f6c2c1",
    "yellow": "#f2c94c", "dark-yellow": "#c9a227", "light-yellow": "#fbefc2", "gray": "#9aa0a6",
    "dark-gray": "#5f6368", "light-gray": "#dadce0", "darker-green": "#1e5a2f", "purple": "#9b51e0",
    "dark-purple": "#6c2bb0", "light-purple": "#dcc3f5",
}
#: Number prefixes and suffixes that make a number an amount of money.
CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "CHF": "CHF"}
#: Baserow's system-kept values, which every record of ours has as a system field.
SYSTEM_FIELDS = {"created_on": "created_at", "last_modified": "updated_at", "created_by": "created_by",
                 "last_modified_by": "updated_by"}
#: Baserow formula functions with the same meaning in our expression language.
FUNCTIONS = {
    "concat": "concat", "upper": "upper", "lower": "lower", "trim": "trim", "length": "len", "if": "if",
    "isblank": "is_null", "abs": "abs", "round": "round", "year": "year", "month": "month", "day": "day",
    "today": "today", "now": "now", "contains": "contains", "when_empty": "coalesce", "greatest": "max",
    "least": "min", "not": "not", "totext": "concat",
}
_TOKEN = re.compile(r"""\s+|(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<number>\d+(?:\.\d+)?)"""
                    r"""|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>&&|\|\||!=|<=|>=|=|[-+*/<>(),])""")
#: Baserow functions that are an operator of ours between their arguments.
OPERATOR_FUNCTIONS = {"and": "and", "or": "or", "equal": "==", "not_equal": "!=", "add": "+", "minus": "-",
                      "multiply": "*", "divide": "/", "greater_than": ">", "greater_than_or_equal": ">=",
                      "less_than": "<", "less_than_or_equal": "<="}
_OPERATORS = {"&&": "and", "||": "or", "=": "=="}
_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
#: count(field('Tasks')), sum(field('Hours lookup')), sum(lookup('Tasks', 'Hours')): a count or rollup.
_AGGREGATE = re.compile(
    rf"""\s*(?P<function>sum|avg|min|max|count)\(\s*(?:field\(\s*(?P<field>{_QUOTED})\s*\)"""
    rf"""|lookup\(\s*(?P<link>{_QUOTED})\s*,\s*(?P<target>{_QUOTED})\s*\))\s*\)\s*""", re.IGNORECASE)


class FormulaNotTranslated(ValueError):
    pass


def convert(document) -> Conversion:
    """Convert a Baserow template or export (`{"export": [applications]}`, or the list of applications):
    every table of its databases."""
    applications = document.get("export") if isinstance(document, dict) else document
    if not isinstance(applications, list) or not all(isinstance(item, dict) for item in applications):
        raise ValueError(_("Not a Baserow template or export: no “export” list of applications."))
    tables = [table for application in applications if application.get("type") == "database"
              for table in application.get("tables") or []]
    if not tables:
        raise ValueError(_("The Baserow file holds no database table."))
    for table in tables:
        if not _well_formed(table, {"id": int, "name": str, "fields": list}) or not all(
                _well_formed(item, {"id": int, "name": str, "type": str}) for item in table["fields"]) \
                or not isinstance(table.get("rows", []), list) \
                or not all(isinstance(row, dict) for row in table.get("rows", [])):
            raise ValueError(_("Not a Baserow template or export: a table or field lacks its id, name or type."))
    name = document.get("name") if isinstance(document, dict) else None
    conversion = Conversion(app=slug(name or "baserow")[:63] or "baserow")
    _Converter(conversion, tables).run()
    return conversion


def _well_formed(item, keys: dict[str, type]) -> bool:
    return isinstance(item, dict) and all(isinstance(item.get(key), kind) for key, kind in keys.items())


class _Converter:
    def __init__(self, conversion: Conversion, tables: list[dict]):
        self.conversion, self.tables = conversion, tables
        self.keys = KeyMaker()
        self.entity_of = {table["id"]: self.keys.entity(table["name"]) for table in tables}
        self.fields = {source["id"]: (table["id"], source) for table in tables for source in table["fields"]}
        self.field_keys: dict[int, str] = {}  # Baserow field id -> our key, for fields that have a column
        self.choices: dict[int, dict] = {}  # select field id -> {option id: value}
        self.reverse_links: list[tuple[str, str, object, object]] = []  # (entity, field, its row id, linked id)
        self.users = {}  # e-mail address -> user id, for collaborators
        kept = self._kept_links()
        # A reverse link's id -> the id of the link of its pair that becomes the relation.
        self.reverse = {field: source["link_row_related_field_id"] for field, (_table, source) in self.fields.items()
                        if source["type"] == "link_row" and field not in kept}

    def _kept_links(self) -> set[int]:
        """Of each pair of links, the one that becomes the relation: the one more lookups, rollups and
        counts read through (they need it on their side), else the first."""
        uses = Counter(self._reads_through(source) for _table, source in self.fields.values())
        order = {field: index for index, field in enumerate(self.fields)}

        def rank(field: int) -> tuple[int, int]:
            return uses[field], -order[field]

        return {field for field, (_table, source) in self.fields.items() if source["type"] == "link_row" and (
            source.get("link_row_related_field_id") not in self.fields
            or rank(field) > rank(source["link_row_related_field_id"]))}

    def run(self) -> None:
        for table in self.tables:
            key = self.entity_of[table["id"]]
            self.conversion.bodies[key] = {"key": key, "label": table["name"][:200], "app": self.conversion.app,
                                           "fields": []}
            for source in sorted(table["fields"], key=lambda item: (not item.get("primary"), item.get("order", 0))):
                self.field_keys[source["id"]] = self.keys.field(key, source["name"])
        for table in self.tables:
            body = self.conversion.bodies[self.entity_of[table["id"]]]
            for source in sorted(table["fields"], key=lambda item: (not item.get("primary"), item.get("order", 0))):
                self._field(body, source)
            if body["fields"] and body["fields"][0]["type"] in ("text", "auto_number"):
                body["display_field"] = body["fields"][0]["key"]
        for table in self.tables:
            self.conversion.rows[self.entity_of[table["id"]]] = [self._row(table, row) for row in table.get("rows", [])]
        for entity, key, row_id, linked in self.reverse_links:
            for row in self.conversion.rows[entity]:
                if row.id == row_id and linked not in row.links.setdefault(key, []):
                    row.links[key].append(linked)

    def _field(self, body: dict, source: dict) -> None:
        entity, kind = body["key"], source["type"]
        report = self.conversion.report(entity, source["name"], kind)
        mapped = self._mapping(source, report)
        if mapped is None:
            return
        field_type, options, extra = mapped
        spec = {"id": field_id("baserow", source["id"]), "key": self.field_keys[source["id"]], "type": field_type,
                "label": source["name"][:200], "options": options, "show_in_list": len(body["fields"]) < 6, **extra}
        if source.get("description"):
            spec["help_text"] = str(source["description"])[:500]
        body["fields"].append(spec)
        report.key, report.type = spec["key"], field_type

    def _mapping(self, source: dict, report) -> tuple[str, dict, dict] | None:
        """(our type, options, other spec entries) of a Baserow field, or None (the report says why)."""
        kind = source["type"]
        simple = {"text": "text", "long_text": "long_text", "boolean": "boolean", "url": "url", "email": "email",
                  "phone_number": "phone", "uuid": "uuid"}
        if kind in simple:
            default = source.get("text_default")
            return simple[kind], {}, ({"default": default} if default else {})
        if kind == "number":
            return self._number(source)
        if kind == "rating":
            return "rating", {"max": source.get("max_value") or 5}, {}
        if kind == "date":
            return ("datetime" if source.get("date_include_time") else "date"), {}, {}
        if kind == "duration":
            return "duration", {}, {}
        if kind in ("single_select", "multiple_select"):
            return self._select(source, report)
        if kind == "file":
            report.note = _("The files themselves are not in the JSON (a template's zip holds them): the field "
                            "is kept, empty.")
            return "file", {"multiple": True}, {}
        if kind == "autonumber":
            return "auto_number", {"digits": 1}, {}
        if kind == "multiple_collaborators":
            return "users", {}, {}
        if kind == "link_row":
            return self._link(source, report)
        if kind == "formula":
            return self._formula(source, report)
        if kind in ("lookup", "rollup", "count"):
            return self._across(source, report)
        if kind in SYSTEM_FIELDS:
            report.note = _("Every record has it: the system field %(field)s.") % {"field": SYSTEM_FIELDS[kind]}
            return None
        if kind == "password":
            report.note = _("Passwords are kept hashed and never shown in Baserow; no field type keeps secrets "
                            "to check against.")
            return None
        report.note = _("No equivalent field type for Baserow's %(type)s.") % {"type": kind}
        return None

    @staticmethod
    def _number(source: dict):
        places = source.get("number_decimal_places") or 0
        sign = (source.get("number_prefix") or source.get("number_suffix") or "").strip()
        if sign in CURRENCY_SIGNS:
            return "currency", {"currency": CURRENCY_SIGNS[sign], "decimal_places": min(places, 6)}, {}
        if sign == "%":  # Both keep a percentage as written: 12.5 is 12.5 %.
            return "percent", {"decimal_places": min(places, 6)}, {}
        minimum = {} if source.get("number_negative") else {"min": 0}
        unit = {"help_text": _("In %(unit)s.") % {"unit": sign}} if sign else {}
        if places == 0:
            return "integer", minimum, unit
        return "decimal", {"max_digits": 20, "decimal_places": places, **minimum}, unit

    def _select(self, source: dict, report):
        values, choices = {}, []
        for option in sorted(source.get("select_options", []), key=lambda item: item.get("order", 0)):
            value = (slug(option["value"]) or f"option_{option['id']}")[:64]
            while value in values.values():
                value = f"{value[:58]}_{option['id']}"[:64]
            values[option["id"]] = value
            choice = {"value": value, "label": str(option["value"])[:200]}
            if option.get("color") in COLORS:
                choice["color"] = COLORS[option["color"]]
            choices.append(choice)
        self.choices[source["id"]] = values
        if not choices:
            report.note = _("A select without options.")
            return None
        return ("choice" if source["type"] == "single_select" else "multiple_choice"), {"choices": choices}, {}

    def _reads_through(self, source: dict) -> int | None:
        """The link a lookup, rollup, count (or a formula that is one) reads through."""
        if source["type"] == "formula":
            source = self._aggregate(source) or {}
        return source.get("through_field_id")

    def _link(self, source: dict, report):
        related = source.get("link_row_related_field_id")
        if source["id"] in self.reverse:
            report.note = _("The reverse of %(entity)s.%(field)s: its related records.") % {
                "entity": self.entity_of[self.fields[related][0]], "field": self.field_keys[related]}
            return None
        target = self.entity_of.get(source.get("link_row_table_id"))
        if target is None:
            report.note = _("Links to a table that is not in the file.")
            return None
        many = source.get("link_row_multiple_relationships", True) is not False
        return "relation", {"target": target, "cardinality": "many_to_many" if many else "many_to_one"}, {}

    def _formula(self, source: dict, report):
        aggregate = self._aggregate(source)
        if aggregate is not None:
            return self._across(aggregate, report)
        try:
            expression = self.translate(source.get("formula", ""), self.fields_of_table(source["id"]))
        except FormulaNotTranslated as error:
            report.note = str(error)
            return None
        return "formula", {"expression": expression}, {}

    def _aggregate(self, source: dict) -> dict | None:
        """A formula that is a count or rollup over a link (`count(field('Tasks'))`, `sum(lookup('Tasks',
        'Hours'))`, `sum(field('Hours lookup'))`) as the count or rollup field it amounts to."""
        match = _AGGREGATE.fullmatch(source.get("formula", ""))
        if match is None:
            return None
        function, names = match["function"].lower(), self.fields_of_table(source["id"])
        through = names.get(_unquote(match["link"] or match["field"]))
        kind = self.fields.get(through, (None, {}))[1].get("type")
        if match["field"] and kind == "link_row" and function == "count":
            return {"type": "count", "through_field_id": through}
        if match["field"] and kind == "lookup":
            lookup = self.fields[through][1]
            return {"type": "rollup", "through_field_id": lookup.get("through_field_id"),
                    "target_field_id": lookup.get("target_field_id"), "rollup_function": function}
        if match["link"] and kind == "link_row":
            target_names = {item["name"]: field for field, (table, item) in self.fields.items()
                            if table == self.fields[through][1].get("link_row_table_id")}
            return {"type": "rollup", "through_field_id": through,
                    "target_field_id": target_names.get(_unquote(match["target"])), "rollup_function": function}
        return None

    def fields_of_table(self, field: int) -> dict[str, int]:
        table = self.fields[field][0]
        return {source["name"]: source["id"] for table_id, source in self.fields.values() if table_id == table}

    def translate(self, formula: str, names: dict[str, int]) -> str:
        """A Baserow formula in our expression language, or FormulaNotTranslated saying why."""
        tokens, position = [], 0
        while position < len(formula):
            match = _TOKEN.match(formula, position)
            if match is None:
                raise FormulaNotTranslated(_("The formula has a character we cannot read at %(position)d.")
                                           % {"position": position})
            position = match.end()
            if match.lastgroup:
                tokens.append((match.lastgroup, match[match.lastgroup]))
        return self._translated(tokens, names)

    def _translated(self, tokens: list[tuple[str, str]], names: dict[str, int]) -> str:
        output, index = [], 0
        while index < len(tokens):
            kind, text = tokens[index]
            if kind == "name" and index + 1 < len(tokens) and tokens[index + 1][1] == "(":
                end = _closing(tokens, index + 1)
                output.append(self._call(text.lower(), _arguments(tokens[index + 2:end]), names))
                index = end + 1
                continue
            if kind == "name" and text.lower() in ("true", "false"):
                output.append(text.lower())
            elif kind == "name":
                raise FormulaNotTranslated(_("Unknown name %(name)s.") % {"name": text})
            elif text == ",":
                raise FormulaNotTranslated(_("A comma outside a function's arguments."))
            else:
                output.append(_OPERATORS.get(text, text))
            index += 1
        return " ".join(output).replace("( ", "(").replace(" )", ")")

    def _call(self, name: str, arguments: list[list], names: dict[str, int]) -> str:
        if name == "field":
            if len(arguments) != 1 or len(arguments[0]) != 1 or arguments[0][0][0] != "string":
                raise FormulaNotTranslated(_("field() takes the name of a field."))
            return self._field_reference(_unquote(arguments[0][0][1]), names)
        if name == "date_diff" and len(arguments) == 3:
            unit = _unquote(arguments[0][0][1]) if len(arguments[0]) == 1 and arguments[0][0][0] == "string" else ""
            if unit.lower() not in ("d", "dd", "day", "days"):
                raise FormulaNotTranslated(_("date_diff() counts days only in our expressions (days_between)."))
            return f"days_between({self._translated(arguments[1], names)}, {self._translated(arguments[2], names)})"
        if name not in FUNCTIONS and not (name in OPERATOR_FUNCTIONS and len(arguments) >= 2):
            raise FormulaNotTranslated(_("The function %(name)s() has no equivalent in our expressions.")
                                       % {"name": name})
        translated = [self._translated(argument, names) for argument in arguments]
        if name in OPERATOR_FUNCTIONS and len(translated) >= 2:
            # An operand is parenthesised unless it is one word or an operator call (parenthesised already).
            return "(" + f" {OPERATOR_FUNCTIONS[name]} ".join(
                part if " " not in part or _operator_call(argument) else f"({part})"
                for part, argument in zip(translated, arguments, strict=True)) + ")"
        return f"{FUNCTIONS[name]}({', '.join(translated)})"

    def _field_reference(self, name: str, names: dict[str, int]) -> str:
        field = names.get(name)
        if field is None:
            raise FormulaNotTranslated(_("The formula names an unknown field %(name)r.") % {"name": name})
        if self.fields[field][1]["type"] in ("link_row", "lookup", "file", "multiple_collaborators"):
            raise FormulaNotTranslated(_("The formula reads %(name)r, a list of values (%(type)s): our formulas "
                                         "read one value per field.")
                                       % {"name": name, "type": self.fields[field][1]["type"]})
        return self.field_keys[field]

    def _across(self, source: dict, report):
        """Lookup, rollup and count: a value of the records a link points to."""
        through = source.get("through_field_id")
        if through not in self.field_keys or self.fields.get(through, (None, {}))[1].get("type") != "link_row":
            report.note = _("It reads through a field that is not a link.")
            return None
        if through in self.reverse:  # The relation seen from the other side: `<entity>.<relation>`.
            kept = self.reverse[through]
            relation = f"{self.entity_of[self.fields[kept][0]]}.{self.field_keys[kept]}"
        else:
            relation = self.field_keys[through]
        if source["type"] == "count":
            return "count", {"relation": relation}, {}
        target = self.field_keys.get(source.get("target_field_id"))
        if target is None:
            report.note = _("It reads a field that is not in the file.")
            return None
        if source["type"] == "lookup":
            return "lookup", {"relation": relation, "field": target}, {}
        function = source.get("rollup_function")
        if function not in ("sum", "avg", "min", "max", "count"):
            report.note = _("Rollups compute sum, avg, min, max or count, not %(function)s.") % {"function": function}
            return None
        return "rollup", {"relation": relation, "field": target, "function": function}, {}

    def _row(self, table: dict, row: dict) -> SourceRow:
        body = self.conversion.bodies[self.entity_of[table["id"]]]
        specs = {spec["id"]: spec for spec in body["fields"]}
        result = SourceRow(row.get("id"), {})
        for source in table["fields"]:
            value = row.get(f"field_{source['id']}")
            spec = specs.get(field_id("baserow", source["id"]))
            if spec is not None and spec["type"] == "relation":
                result.links[spec["key"]] = _ids(value)
            elif source["id"] in self.reverse:
                # The reverse side holds the same links: the record it names links to this row.
                self._reverse_links(source["id"], row.get("id"), _ids(value))
            elif spec is not None and value not in (None, "", []):
                with suppress(TypeError, ValueError, AttributeError):  # Else kept: the row's validation says why.
                    value = self._value(source, spec, value)
                if value is not None:
                    result.values[spec["key"]] = value
        return result

    def _reverse_links(self, field: int, row_id, linked: list) -> None:
        kept = self.reverse[field]
        self.reverse_links.extend((self.entity_of[self.fields[kept][0]], self.field_keys[kept], other, row_id)
                                  for other in linked)

    def _value(self, source: dict, spec: dict, value):
        kind = spec["type"]
        if kind in ("relation", "file", "formula", "lookup", "rollup", "count", "auto_number"):
            return None
        if kind == "choice":
            return self.choices[source["id"]].get(_option_id(value))
        if kind == "multiple_choice":
            values = self.choices[source["id"]]
            return [values[option] for option in map(_option_id, value) if option in values]
        if kind == "users":
            return self._user_ids(item.get("email") if isinstance(item, dict) else item for item in value)
        if kind == "boolean":
            return value in (True, "true", "1", 1)
        if kind in ("integer", "duration"):
            return int(float(value))
        if kind == "rating":
            return int(value) or None
        return value

    def _user_ids(self, emails) -> list[int]:
        """The people of this workspace with these e-mail addresses (others are left out)."""
        emails = [email for email in emails if isinstance(email, str)]
        missing = [email for email in emails if email not in self.users]
        if missing:
            self.users.update(get_user_model().objects.filter(email__in=missing).values_list("email", "pk"))
        return [self.users[email] for email in emails if email in self.users]


def _closing(tokens: list[tuple[str, str]], opening: int) -> int:
    """The index of the parenthesis that closes the one at `opening`."""
    depth = 0
    for index in range(opening, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[index][1], 0) if tokens[index][0] == "op" else 0
        if depth == 0:
            return index
    raise FormulaNotTranslated(_("A parenthesis is not closed."))


def _operator_call(tokens: list[tuple[str, str]]) -> bool:
    """Whether `tokens` are one call of an operator function (`and(a, b)`)."""
    return len(tokens) > 2 and tokens[0][0] == "name" and tokens[0][1].lower() in OPERATOR_FUNCTIONS \
        and tokens[1] == ("op", "(") and _closing(tokens, 1) == len(tokens) - 1


def _arguments(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """A call's argument tokens split at its own commas (none: no argument)."""
    arguments, current, depth = [], [], 0
    for token in tokens:
        if token[0] == "op" and token[1] in "()":
            depth += 1 if token[1] == "(" else -1
        if token == ("op", ",") and depth == 0:
            arguments.append(current)
            current = []
        else:
            current.append(token)
    return [*arguments, current] if current or arguments else []


def _unquote(text: str | None) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1]) if text else ""


def _ids(value) -> list:
    return [item.get("id") if isinstance(item, dict) else item for item in value or []]


def _option_id(value):
    return value.get("id") if isinstance(value, dict) else value
