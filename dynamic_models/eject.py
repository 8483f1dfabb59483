"""Eject to code: a schema migration as a Django migration file plus a models.py snippet (DM-3).

Lets a team move an entity out of metadata into a regular app: the generated code describes
the same table (`db_table`, column names) with Django's own migration operations.
"""

from __future__ import annotations

from django.db import migrations
from django.db.migrations.writer import MigrationWriter

from dynamic_models import runtime
from dynamic_models.models import SchemaMigration
from metadata.services import get_version


def _model(key: str, version: int):
    body = get_version("entity", key, version).body
    others = {k: b for k, b in runtime.load_bodies().items() if k != key}
    return runtime.build_apps({**others, key: body}).get_model("data", key)


def _fields(model) -> list[tuple[str, object]]:
    return [(field.name, field.clone()) for field in model._meta.local_fields + model._meta.local_many_to_many]


def _operations(migration: SchemaMigration, model, old_model) -> list:
    name = model.__name__
    result = []
    for operation in migration.operations:
        op = operation["op"]
        if op == "create_model":
            result.append(migrations.CreateModel(name=name, fields=_fields(model), options={
                "db_table": model._meta.db_table, "ordering": list(model._meta.ordering),
                "verbose_name": str(model._meta.verbose_name),
                "verbose_name_plural": str(model._meta.verbose_name_plural)}))
        elif op in ("add_field", "restore_field"):
            result.append(migrations.AddField(name, operation["field"], model._meta.get_field(operation["field"]).clone()))
        elif op == "alter_field":
            if operation.get("renamed_from"):
                result.append(migrations.RenameField(name, operation["renamed_from"], operation["field"]))
            result.append(migrations.AlterField(name, operation["field"],
                                                model._meta.get_field(operation["field"]).clone()))
        elif op == "remove_field" and old_model is not None:
            result.append(migrations.RemoveField(name, operation["field"]))
    return result


def eject(migration: SchemaMigration, *, app_label: str = "data") -> dict[str, str]:
    """Return {"migration": <migration file>, "models": <models.py snippet>} for `migration`."""
    model = _model(migration.entity_key, migration.to_version)
    old_model = _model(migration.entity_key, migration.from_version) if migration.from_version else None
    django_migration = type("Migration", (migrations.Migration,), {
        "operations": _operations(migration, model, old_model),
        "dependencies": [("auth", "__first__")] if any(
            f.is_relation and f.related_model._meta.app_label == "auth" for f in model._meta.fields) else [],
        "initial": migration.from_version is None,
    })(f"{migration.to_version:04d}_{migration.entity_key}_v{migration.to_version}", app_label)
    return {"migration": MigrationWriter(django_migration).as_string(), "models": models_snippet(model)}


def models_snippet(model) -> str:
    """Render the model class as it would be written by hand in an app's models.py."""
    imports = {"from django.db import models"}
    lines = []
    for field in model._meta.local_fields + model._meta.local_many_to_many:
        if field.name == "id":
            continue
        source, field_imports = MigrationWriter.serialize(field)
        imports.update(field_imports)
        lines.append(f"    {field.name} = {source}")
    meta = model._meta
    lines += ["", "    class Meta:", f"        db_table = {meta.db_table!r}", f"        ordering = {list(meta.ordering)!r}",
              f"        verbose_name = {str(meta.verbose_name)!r}",
              f"        verbose_name_plural = {str(meta.verbose_name_plural)!r}"]
    display = model.lowcode_entity.get("display_field")
    if display:
        lines += ["", "    def __str__(self):", f"        return str(self.{display})"]
    header = "\n".join(sorted(imports))
    return f"{header}\n\n\nclass {model.__name__.title().replace('_', '')}(models.Model):\n" + "\n".join(lines) + "\n"
