"""Frappe DocTypes (the `<doctype>.json` files of an app's modules) as a conversion: each DocType an
entity, each data field its equivalent. DocType files hold no records, so nothing else comes.

Child tables (`istable`) become child entities (the option `child_of`, dynamic_models.children)
edited inline and in order in their parent: a required relation to the parent (deleted with it)
and an integer `idx` (Frappe's row order). Frappe's `name` becomes an auto number when
the DocType names its records by a pattern (`HR-EXP-.YYYY.-.####`), and `fetch_from` a lookup.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from dynamic_models.importers.conversion import Conversion, KeyMaker, field_id, set_entity_option, slug

#: Frappe field types that only lay out the form.
LAYOUT = {"Section Break", "Column Break", "Tab Break", "HTML", "Heading", "Fold", "Button", "Image"}
SIMPLE = {
    "Small Text": "long_text", "Text": "long_text", "Long Text": "long_text", "Code": "long_text",
    "Markdown Editor": "long_text", "Text Editor": "rich_text", "HTML Editor": "rich_text", "Int": "integer",
    "Check": "boolean", "Date": "date", "Datetime": "datetime", "Time": "time", "Duration": "duration",
    "Percent": "percent", "JSON": "json", "Geolocation": "json", "Autocomplete": "text", "Phone": "phone",
    "Read Only": "text", "Attach": "file", "Attach Image": "image",
}
#: `Data` fields whose options say what the text is.
DATA_OPTIONS = {"Email": "email", "Phone": "phone", "URL": "url"}
#: The currency of amounts whose DocType does not say (Frappe takes the company's).
DEFAULT_CURRENCY = "USD"
#: DocTypes of Frappe itself that are our users.
USER_DOCTYPES = {"User"}


def convert(doctypes: list[dict], *, app: str = "") -> Conversion:
    """Convert DocType documents (as Frappe writes them: `"doctype": "DocType"`)."""
    doctypes = [{**doc, "fields": [item for item in doc.get("fields", []) if isinstance(item, dict)]}
                for doc in doctypes if isinstance(doc, dict) and doc.get("doctype") == "DocType"
                and isinstance(doc.get("name"), str) and isinstance(doc.get("fields", []), list)]
    if not doctypes:
        raise ValueError(_("No Frappe DocType found: each file holds a JSON object with \"doctype\": \"DocType\"."))
    module = app or next((doc.get("module") for doc in doctypes if doc.get("module")), "") or "frappe"
    conversion = Conversion(app=slug(module)[:63] or "frappe")
    _Converter(conversion, doctypes).run()
    return conversion


class _Converter:
    def __init__(self, conversion: Conversion, doctypes: list[dict]):
        self.conversion, self.doctypes = conversion, doctypes
        self.keys = KeyMaker()
        self.entity_of = {doc["name"]: self.keys.entity(doc["name"]) for doc in doctypes}
        self.field_keys: dict[tuple[str, str], str] = {}  # (DocType, fieldname) -> our key
        self.parents: dict[str, list[tuple[str, dict]]] = {}  # child DocType -> [(parent DocType, Table field)]

    def run(self) -> None:
        for doc in self.doctypes:
            entity = self.entity_of[doc["name"]]
            for source in doc.get("fields", []):
                if source.get("fieldtype") not in LAYOUT and source.get("fieldname"):
                    self.field_keys[doc["name"], source["fieldname"]] = self.keys.field(entity, source["fieldname"])
                if source.get("fieldtype") == "Table" and source.get("options"):
                    self.parents.setdefault(source["options"], []).append((doc["name"], source))
        link_tables = {source.get("options") for doc in self.doctypes for source in doc.get("fields", [])
                       if source.get("fieldtype") == "Table MultiSelect"}
        for doc in self.doctypes:
            if doc.get("istable") and doc["name"] in link_tables and doc["name"] not in self.parents:
                # Only a Table MultiSelect's list of links: that field is the many-to-many relation.
                self.conversion.report(self.entity_of[doc["name"]], doc["name"], "child table",
                                       note=_("The links of a Table MultiSelect: a many-to-many relation there."))
                continue
            self.conversion.bodies[self.entity_of[doc["name"]]] = self._body(doc)

    def _body(self, doc: dict) -> dict:
        entity = self.entity_of[doc["name"]]
        body = {"key": entity, "label": doc["name"][:200], "app": self.conversion.app, "fields": []}
        if doc.get("description"):
            body["description"] = str(doc["description"])[:2000]
        if doc.get("issingle"):
            set_entity_option(self.conversion, body, "single", True, source="issingle", source_type="DocType",
                              what=_("settings entity"))
        self._naming(doc, body)
        if doc.get("istable"):
            self._parent(doc, body)
        for source in doc.get("fields", []):
            self._field(doc, body, source)
        title = self.field_keys.get((doc["name"], doc.get("title_field") or ""))
        keys = [spec["key"] for spec in body["fields"]]
        if title in keys:
            body["display_field"] = title
        elif keys and body["fields"][0]["type"] in ("text", "auto_number"):
            body["display_field"] = keys[0]
        if doc.get("sort_field") in {name for (doctype, name) in self.field_keys if doctype == doc["name"]}:
            key = self.field_keys[doc["name"], doc["sort_field"]]
            if key in keys:
                body["ordering"] = [("-" if doc.get("sort_order", "DESC").upper() == "DESC" else "") + key]
        return body

    def _naming(self, doc: dict, body: dict) -> None:
        """Frappe's `name` as a field: an auto number for a pattern; a naming rule without one is our id."""
        autoname = str(doc.get("autoname") or "")
        pattern = ""
        if "#" in autoname and not autoname.startswith(("field:", "format:", "naming_series:")):
            pattern = autoname
        elif autoname.startswith("naming_series:"):
            series = next((source for source in doc.get("fields", []) if source.get("fieldname") == "naming_series"), {})
            first = str(series.get("options") or "").split("\n")[0].strip()
            if first:
                pattern = first if "#" in first else f"{first}.#####"
        report = self.conversion.report(body["key"], "name", "autoname " + (autoname or "hash"))
        if not pattern:
            report.note = _("Named by the field %(field)s, which is made unique.") % {"field": autoname[6:]} \
                if autoname.startswith("field:") else _("Records are numbered by their id.")
            return
        key = self.keys.field(body["key"], "name")
        body["fields"].append({"id": field_id("frappe", doc["name"], "name"), "key": key, "type": "auto_number",
                               "label": _("Number"), "options": {"pattern": pattern}, "show_in_list": True})
        report.key, report.type = key, "auto_number"

    def _parent(self, doc: dict, body: dict) -> None:
        """A child table's rows belong to a record of the (first) DocType that holds them."""
        parents = [parent for parent, _table in self.parents.get(doc["name"], []) if parent in self.entity_of]
        report = self.conversion.report(body["key"], "parent", "child table")
        if not parents:
            report.note = _("A child table no DocType of the files holds.")
            return
        parent = self.entity_of[parents[0]]
        key = self.keys.field(body["key"], parent)
        body["fields"].append({"id": field_id("frappe", doc["name"], "parent"), "key": key, "type": "relation",
                               "label": parents[0][:200], "required": True,
                               "options": {"target": parent, "on_delete": "cascade"}})
        report.key, report.type = key, "relation"
        # Frappe keeps a row's place in `idx`: the order field of the child rows.
        order = self.keys.field(body["key"], "idx")
        body["fields"].append({"id": field_id("frappe", doc["name"], "idx"), "key": order, "type": "integer",
                               "label": _("Row"), "show_in_list": False})
        set_entity_option(self.conversion, body, "child_of", {"relation": key, "order_field": order},
                          source="istable", source_type="DocType", what=_("ordered child rows"))

    def _field(self, doc: dict, body: dict, source: dict) -> None:
        kind, name = source.get("fieldtype") or "Data", source.get("fieldname")
        if kind in LAYOUT or not name:
            return
        report = self.conversion.report(body["key"], name, kind)
        mapped = self._mapping(doc, source, report)
        if mapped is None:
            return
        field_type, options = mapped
        spec = {"id": field_id("frappe", doc["name"], name), "key": self.field_keys[doc["name"], name],
                "type": field_type, "label": str(source.get("label") or name)[:200], "options": options,
                "required": bool(source.get("reqd")) and field_type not in ("lookup", "formula"),
                "read_only": bool(source.get("read_only")) and field_type not in ("lookup", "formula", "auto_number"),
                "show_in_list": bool(source.get("in_list_view")), "filterable": bool(source.get("in_standard_filter")),
                "unique": bool(source.get("unique")) or str(doc.get("autoname")) == f"field:{name}"}
        if spec["read_only"]:
            spec["required"] = False  # Nobody could ever create a record.
        if source.get("description"):
            spec["help_text"] = str(source["description"])[:500]
        default = source.get("default")
        if default not in (None, "") and field_type in ("text", "long_text", "choice", "integer", "boolean"):
            spec["default"] = {"integer": _int, "boolean": lambda value: bool(_int(value)), "choice": _choice}.get(
                field_type, str)(default)
        body["fields"].append({key: value for key, value in spec.items() if value is not None})
        report.key, report.type = spec["key"], field_type

    def _mapping(self, doc: dict, source: dict, report) -> tuple[str, dict] | None:
        kind, options = source.get("fieldtype") or "Data", str(source.get("options") or "").strip()
        if source.get("fetch_from"):
            return self._lookup(doc, source, report)
        if kind == "Data" and options in DATA_OPTIONS:
            return DATA_OPTIONS[options], {}
        if kind == "Data":
            return "text", {"max_length": int(source.get("length") or 140)}
        if kind in SIMPLE:
            return SIMPLE[kind], ({"multiple": False} if kind.startswith("Attach") else {})
        if kind == "Float":
            return "decimal", {"max_digits": 21, "decimal_places": int(source.get("precision") or 9)}
        if kind == "Currency":
            return self._currency(doc, options, report)
        if kind == "Rating":
            return "rating", {"max": int(options) if options.isdigit() else 5}
        if kind == "Select":
            values = [line.strip() for line in options.split("\n") if line.strip()]
            if not values:
                report.note = _("A select without options.")
                return None
            return "choice", {"choices": [{"value": _choice(value), "label": value[:200]} for value in dict.fromkeys(values)]}
        if kind == "Link":
            return self._link(options, report)
        if kind == "Dynamic Link":
            return "generic_link", {}
        if kind == "Table MultiSelect":
            return self._multiselect(options, report)
        if kind == "Table":
            child = self.entity_of.get(options)
            report.note = _("Its rows are the entity %(entity)s, edited inline and in order.") % {"entity": child} \
                if child else _("Its child DocType %(doctype)s is not among the files.") % {"doctype": options}
            return None
        if kind == "Password":
            report.note = _("Frappe keeps passwords encrypted apart from the record; no field type keeps secrets.")
            return None
        report.note = _("No equivalent field type for Frappe's %(type)s.") % {"type": kind}
        return None

    def _currency(self, doc: dict, options: str, report) -> tuple[str, dict]:
        """Frappe's options name the field holding the currency; else it is the company's (unknown here)."""
        currency_field = self.field_keys.get((doc["name"], options))
        if currency_field is not None:
            return "currency", {"currency_field": currency_field}
        report.note = _("Frappe takes its currency from %(where)s; imported as %(currency)s, change it in the "
                        "designer if need be.") % {"where": options or _("the company"), "currency": DEFAULT_CURRENCY}
        return "currency", {"currency": DEFAULT_CURRENCY}

    def _link(self, doctype: str, report) -> tuple[str, dict] | None:
        if doctype in USER_DOCTYPES:
            return "user", {}
        target = self.entity_of.get(doctype)
        if target is None:
            report.note = _("Links to the DocType %(doctype)s, which is not among the files.") % {"doctype": doctype}
            return None
        return "relation", {"target": target, "cardinality": "many_to_one"}

    def _multiselect(self, child: str, report) -> tuple[str, dict] | None:
        """A Table MultiSelect lists records of the DocType its child table links to: a many-to-many."""
        links = [source.get("options") for doc in self.doctypes if doc["name"] == child
                 for source in doc.get("fields", []) if source.get("fieldtype") == "Link"]
        if not links:
            report.note = _("Its child DocType %(doctype)s is not among the files.") % {"doctype": child}
            return None
        if links[0] in USER_DOCTYPES:
            return "users", {}
        mapped = self._link(links[0], report)
        return mapped and ("relation", {**mapped[1], "cardinality": "many_to_many"})

    def _lookup(self, doc: dict, source: dict, report) -> tuple[str, dict] | None:
        """`fetch_from: employee.employee_name`: the named field of the record the link points to."""
        link, _dot, target_field = str(source["fetch_from"]).partition(".")
        link_field = next((item for item in doc.get("fields", []) if item.get("fieldname") == link), None)
        if link_field is None or link_field.get("fieldtype") != "Link" or not target_field:
            report.note = _("fetch_from %(path)s does not name a link field and a field.") % {
                "path": source["fetch_from"]}
            return None
        target_key = self.field_keys.get((link_field.get("options"), target_field))
        if target_key is None:
            report.note = _("fetch_from reads %(doctype)s.%(field)s, which is not among the files.") % {
                "doctype": link_field.get("options"), "field": target_field}
            return None
        return "lookup", {"relation": self.field_keys[doc["name"], link], "field": target_key}


def _choice(value) -> str:
    """A select option as a choice value (its label keeps the text as Frappe shows it)."""
    return (slug(value) or "option")[:64]


def _int(value) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
