"""What the entity designer page needs to draw its widgets (issue 12): each field type's options
schema with its options in words and the input its default takes, the entities a relation may
point to, and the functions a formula may call. The page's scripts are
static/lowcode/designer/shell.js (list, panel, widgets from a schema) and entity.js (this designer's
editors)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext as _

from dynamic_models import runtime
from dynamic_models.definitions import OPTION_LABELS
from dynamic_models.field_types import ChoiceType, MultipleChoiceType
from dynamic_models.registries import FieldType, field_type_registry
from lowcode.expressions import function_registry

#: The input a default takes, by the class of the type's model field (the first match wins).
_DEFAULT_INPUTS = [
    (models.BooleanField, "checkbox"), (models.DateTimeField, "datetime-local"), (models.DateField, "date"),
    (models.TimeField, "time"), (models.IntegerField, "integer"), (models.DecimalField, "number"),
    (models.FloatField, "number"), (models.JSONField, "json"), (models.TextField, "textarea"),
    (models.CharField, "text"), (models.UUIDField, "text"),
]


def default_input(field_type: FieldType) -> str | None:
    """The widget a default of this type is edited with; None when the type takes no default
    (formulas, auto numbers, relations, users and files)."""
    if not field_type.has_column or field_type.filled_by_database or field_type.is_relation or field_type.links_user:
        return None
    if isinstance(field_type, MultipleChoiceType):
        return "multiple_choice"
    if isinstance(field_type, ChoiceType):
        return "choice"
    try:
        field_class = field_type.model_field_class({"key": "field", "options": {}})
    except (KeyError, LookupError, NotImplementedError, TypeError, ValueError):
        return "json"  # A plugin's type that needs its options: its default is edited as JSON.
    if issubclass(field_class, models.ForeignKey):
        return None  # Files.
    return next((kind for base, kind in _DEFAULT_INPUTS if issubclass(field_class, base)), "json")


def config(entity_key: str = "") -> dict:
    """The designer's data, for the page's JSON script element."""
    entities = runtime.published_entity_bodies()
    targets = sorted({*entities, *([entity_key] if entity_key else [])})
    return {
        "entity_key": entity_key,
        "types": {
            field_type.type: {
                "label": str(field_type.verbose_name), "schema": field_type.options_schema,
                "can_be_unique": field_type.can_be_unique, "can_encrypt": field_type.can_encrypt,
                "filterable": field_type.filterable, "searchable": field_type.searchable,
                "default": default_input(field_type),
            } for field_type in field_type_registry.get_all()
        },
        "entities": [{"key": key, "label": (entities.get(key) or {}).get("label") or key} for key in targets],
        "functions": sorted(({"name": function.type, "arguments": function.min_arguments}
                             for function in function_registry.get_all() if function.argument_kinds is not None),
                            key=lambda function: function["name"]),
        "labels": {name: str(label) for name, label in OPTION_LABELS.items()},
        "values": {  # The built-in types' enum options in words.
            "protect": _("Refuse the delete"), "set_null": _("Empty this field"),
            "cascade": _("Delete this record too"), "restrict": _("Refuse, unless both are deleted together"),
            "many_to_one": _("Many to one"), "one_to_one": _("One to one"), "many_to_many": _("Many to many"),
        },
        "text": {
            "add_choice": _("Add a choice"), "remove": _("Remove"), "value": _("Value"), "label": _("Label"),
            "colour": _("Colour"), "no_colour": _("No colour"), "none": _("(none)"), "no_default": _("(no default)"),
            "insert_field": _("Insert a field…"), "insert_function": _("Insert a function…"),
            "checking": _("Checking…"), "valid": _("Valid: gives %(type)s."),
            "try_value": _("Try a value"), "matches": _("Matches."), "no_match": _("Does not match."),
            "bad_pattern": _("This pattern is not valid."), "new_field": _("New field"),
            "removed": _("Removed when you save."), "keep": _("Keep it"), "no_options": _("This type has no options."),
            "move": _("Drag to reorder, or Alt+Up and Alt+Down on the field"), "drag": _("Drag to reorder"), "default_yes": _("Checked"),
            "choice_values": _("Values are stored; labels are shown. Drag rows to order them."),
            "separated": _("Separated by commas, e.g. image/*, .pdf"),
        },
    }
