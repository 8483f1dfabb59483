"""Runtime model classes per tenant snapshot (DM-2).

Each tenant's published entities are built into a private app registry (`SnapshotApps`)
under the app label `data`, one model per entity key (`data.expense`, table `dm_expense`).
A snapshot is cached per schema and used while its token equals the entity token of the
tenant row (`definition_versions`), which django-tenants loads on every request: checking
freshness costs no query, a publish of an entity in any process is seen by every other on its
next request, and a publish of another kind of definition rebuilds nothing. Two tenants
may define the same key differently: their classes live in different registries.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.migrations.state import AppConfigStub
from django.utils import timezone
from django.utils.functional import cached_property as django_cached_property
from django.utils.functional import lazy
from django.utils.translation import get_language, gettext_lazy

from dynamic_models import single
from dynamic_models.formulas import computed_value
from dynamic_models.registries import field_type_registry
from dynamic_models.validation import rule_errors
from lowcode.tenancy import quotas

APP_LABEL = "data"
ENTITY_KIND = "entity"  # The definition kind whose published bodies a snapshot builds.


class SnapshotApps(Apps):
    """A private registry holding one tenant's runtime models."""

    def __init__(self):
        super().__init__([AppConfigStub(APP_LABEL)])
        self.app_configs[APP_LABEL].verbose_name = gettext_lazy("Data")  # Admin breadcrumbs and app index.
        # Relations to users and files (file and image fields) resolve to the real models.
        # Seeded here only, not as app configs: that would rebuild their global relation trees.
        for model in (global_apps.get_model(settings.AUTH_USER_MODEL), global_apps.get_model("files", "StoredFile")):
            self.all_models[model._meta.app_label][model._meta.model_name] = model


class ActiveRecordManager(models.Manager):
    """Records not soft-deleted, with formula fields computed by the database."""

    def get_queryset(self):
        queryset = super().get_queryset().filter(deleted_at__isnull=True)
        formulas = self.model.lowcode_formulas
        if formulas:
            queryset = queryset.annotate(**{key: expr.to_orm() for key, expr in formulas.items()})
        return queryset


class DynamicRecord(models.Model):
    """System columns of every entity (DM-7)."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                   on_delete=models.SET_NULL, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)

    lowcode_entity: dict = {}
    lowcode_formulas: dict = {}

    class Meta:
        abstract = True
        app_label = APP_LABEL

    def __str__(self):
        display = self.lowcode_entity.get("display_field")
        value = getattr(self, display, None) if display else None
        return str(value) if value not in (None, "") else f"{self._meta.verbose_name} #{self.pk}"

    @classmethod
    def from_db(cls, db, field_names, values):
        record = super().from_db(db, field_names, values)
        # The values as loaded: the audit event of the next save names what changed (AD-1).
        record.loaded_values = dict(zip(field_names, values, strict=True))
        return record

    def clean(self):
        errors = rule_errors(self)
        if errors:
            raise ValidationError(errors)
        if self._state.adding:
            single.check_new_record(self)
            # Told on the form, before the save refuses it (validation.save_record checks again).
            quotas.check("records")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def formula_value(self, key: str):
        """Return a formula field's value: annotated by the manager, else computed here."""
        if key in self.__dict__:
            return self.__dict__[key]
        record = {f.name: getattr(self, f.attname) for f in self._meta.concrete_fields}
        return self.lowcode_formulas[key].evaluate(record)

    def soft_delete(self) -> None:
        """Mark deleted, applying each relation's on-delete rule to live dependants (DM-7)."""
        for relation in self._meta.related_objects:
            if relation.many_to_many:
                continue
            dependants = relation.related_model.objects.filter(**{relation.field.name: self})
            if not dependants.exists():
                continue
            if relation.on_delete in (models.PROTECT, models.RESTRICT):
                raise models.ProtectedError(
                    f"{self} is used by {relation.related_model._meta.verbose_name_plural}: "
                    f"{', '.join(str(d) for d in dependants[:5])}", set(dependants[:10]))
            if relation.on_delete is models.CASCADE:
                for dependant in dependants:
                    dependant.soft_delete()
            elif relation.on_delete is models.SET_NULL:
                dependants.update(**{relation.field.name: None})
        self.deleted_at = timezone.now()
        self.save(update_fields=["deleted_at", "updated_at"])

    def restore(self) -> None:
        self.deleted_at = None
        self.save(update_fields=["deleted_at", "updated_at"])


def _translated(texts: dict[str, str], default: str):
    """A label in the active language (the body's `translations`), else `default`."""
    if not texts:
        return default
    return lazy(lambda: texts.get(get_language() or "", default), str)()


def build_model(apps: SnapshotApps, body: dict) -> type[models.Model]:
    """Build the model class of one entity body into `apps`."""
    key = body["key"]
    translations = body.get("translations", {})
    label = body.get("label") or key.replace("_", " ")
    plural = body.get("label_plural") or label
    meta = type("Meta", (), {
        "apps": apps, "app_label": APP_LABEL, "db_table": f"dm_{key}",
        "verbose_name": _translated({code: t["label"] for code, t in translations.items() if t.get("label")}, label),
        "verbose_name_plural": _translated(
            {code: t["label_plural"] for code, t in translations.items() if t.get("label_plural")}, plural),
        "ordering": body.get("ordering") or ["-id"],
    })
    attrs = {"__module__": "dynamic_models.data.models", "Meta": meta, "lowcode_entity": body,
             "objects": ActiveRecordManager(), "all_objects": models.Manager(), "lowcode_formulas": {}}
    for spec in body["fields"]:
        field_type = field_type_registry.get(spec["type"])
        if field_type.has_column:
            field = field_type.get_model_field({**spec, "entity": key, "options": spec.get("options", {})})
            field.verbose_name = _translated(
                {code: t["fields"][spec["key"]] for code, t in translations.items()
                 if spec["key"] in t.get("fields", {})}, field.verbose_name)
            attrs[spec["key"]] = field
        else:
            # Compiled on first use: building models (and the tenant's URLs) evaluates no formula.
            attrs["lowcode_formulas"][spec["key"]] = computed_value(body, {**spec, "options": spec.get("options", {})})
    return type(key, (DynamicRecord,), attrs)


def build_apps(bodies: dict[str, dict]) -> SnapshotApps:
    """Build every entity of `bodies` into a new private registry; relations must resolve."""
    apps = SnapshotApps()
    # Not ready while it fills: a ready registry expires every model's caches on each registration
    # (quadratic in the tenant's entities); once at the end instead.
    apps.ready = False
    for body in bodies.values():
        build_model(apps, body)
    apps.ready = True
    apps.clear_cache()
    unresolved = {f"{label}.{name}" for (label, name) in apps._pending_operations}
    if unresolved:
        raise LookupError(f"Relations point to unknown entities: {', '.join(sorted(unresolved))}")
    return apps


def relation_targets(body: dict) -> set[str]:
    """The entities whose model classes `body`'s relation fields point to. A type no longer
    registered (a replaced snapshot's body of a plugin's type, the plugin since disabled) points
    nowhere: relations are built-in types."""
    return {spec["options"]["target"] for spec in body["fields"]
            if spec.get("options", {}).get("target") and field_type_registry.is_registered(spec["type"])
            and field_type_registry.get(spec["type"]).is_relation}


def build_entity_model(body: dict) -> type[models.Model]:
    """Build the model class of one entity body into a new private registry, with a stub (its
    table and id only) of each entity its relations point to: what the migration of its table
    reads (column types, constraints, link tables), at a cost that does not grow with the tenant.
    """
    apps = SnapshotApps()
    apps.ready = False
    for target in sorted(relation_targets(body) - {body["key"]}):
        build_model(apps, {"key": target, "fields": []})
    model = build_model(apps, body)
    apps.ready = True
    apps.clear_cache()
    return model


#: Past this share of a tenant's entities to build again, a snapshot is built whole (`rebuilt_apps`).
REBUILD_WHOLE_SHARE = 0.8


def rebuilt_apps(previous: Snapshot, bodies: dict[str, dict]) -> SnapshotApps:
    """The registry of `bodies`, built from `previous` (the tenant's stale snapshot) by building
    again only the entities whose body changed and those related to them in either direction;
    the others' model classes move over (a publish then costs the same in a tenant of any size).

    A class belongs to one registry (`_meta.apps`, read for its reverse relations): a moved class
    is taken from `previous`, whose snapshot is stale and dropped, its reverse relations computed
    again, and its relations to a class built again pointed to the new class. Requests still
    using `previous` meanwhile see the new classes, which are what the database now holds.
    """
    changed = {key for key in bodies.keys() | previous.bodies.keys() if bodies.get(key) != previous.bodies.get(key)}
    if not changed:
        return previous.apps
    rebuilt = set(changed)
    for key in changed:
        rebuilt |= relation_targets(bodies.get(key) or previous.bodies[key])
        rebuilt |= relation_targets(previous.bodies.get(key) or bodies[key])
    # Entities pointing at a changed one, and those holding a rollup or count over one: their
    # computed fields were compiled against its previous fields.
    rebuilt |= {key for key, body in bodies.items() if _reads(body, changed)}
    rebuilt &= set(bodies)
    if len(rebuilt) > len(bodies) * REBUILD_WHOLE_SHARE:
        return build_apps(bodies)
    moved, through_models = {}, {}
    for model in previous.apps.all_models[APP_LABEL].values():
        owner = model._meta.auto_created or model  # A many-to-many link model moves with its entity.
        key = owner.lowcode_entity["key"]
        if key in bodies and key not in rebuilt:
            if model._meta.auto_created:
                through_models.setdefault(key, []).append(model)
            else:
                moved[key] = model
    apps = SnapshotApps()
    apps.ready = False
    for key, body in bodies.items():  # In the order a whole build registers them.
        if key not in moved:
            build_model(apps, body)
            continue
        for model in [*through_models.get(key, ()), moved[key]]:
            model._meta.apps = apps
            apps.register_model(APP_LABEL, model)
    for model in [*moved.values(), *itertools.chain.from_iterable(through_models.values())]:
        for model_field in [*model._meta.local_fields, *model._meta.local_many_to_many]:
            target = model_field.remote_field.model if model_field.is_relation else None
            if isinstance(target, type) and target._meta.apps is not apps and target._meta.app_label == APP_LABEL:
                _point_to(model_field, apps.get_registered_model(APP_LABEL, target._meta.model_name))
    apps.ready = True
    apps.clear_cache()  # Every class's reverse relations, from this registry.
    return apps


def _reads(body: dict, keys: set[str]) -> bool:
    """Whether a field of `body` points at or reads one of the entities `keys` (a relation's
    target, a rollup's or count's `entity.field`); a field of another type naming one errs on the
    safe side. The options only: asking the field type registry for every field of a large
    tenant costs more than the classes this saves."""
    for spec in body["fields"]:
        options = spec.get("options") or {}
        if options.get("target") in keys or str(options.get("relation", "")).rpartition(".")[0] in keys:
            return True
    return False


def _point_to(model_field: models.Field, target: type[models.Model]) -> None:
    """Point a moved class's relation field (and its forward accessor) to `target`, as Django's
    resolution of a lazy relation does, forgetting what it cached of the previous class."""
    for owner in (model_field, model_field.remote_field, vars(model_field.model).get(model_field.name)):
        for name in _cached_names(type(owner)):
            owner.__dict__.pop(name, None)
    model_field.remote_field.model = target
    model_field.do_related_class(target, model_field.model)


def _cached_names(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name, value in vars(klass).items()
            if isinstance(value, django_cached_property | cached_property)}


_serials = itertools.count(1)


class PerEntity(Mapping):
    """Classes derived from a snapshot's models (serializers, viewsets, admins), each built on
    first use: a tenant's site costs little to build however many entities it has, and a
    request builds only what it touches. Two threads may build the same key; either result serves."""

    def __init__(self, keys, build: Callable[[str], object]):
        self._keys = keys
        self._build = build
        self._built: dict[str, object] = {}

    def __getitem__(self, key: str):
        built = self._built.get(key)
        if built is None:
            if key not in self._keys:
                raise KeyError(key)
            built = self._built.setdefault(key, self._build(key))
        return built

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


#: Estimated resident memory of a snapshot, per entity and per field, with the site pieces built
#: from it (measured by benchmarks/many_tenants.py: about 3.7 KiB per field with its admin and API).
ENTITY_BYTES = 24 * 1024
FIELD_BYTES = 4 * 1024


@dataclass
class Snapshot:
    schema_name: str
    token: str | None
    bodies: dict[str, dict]
    apps: SnapshotApps = field(repr=False)
    #: Unique among this process's snapshots: what the tenant's site was built from.
    serial: int = field(default_factory=_serials.__next__, init=False)
    #: The checksum of each body (metadata's): the next snapshot reads only the bodies that changed.
    checksums: dict[str, str] = field(default_factory=dict, repr=False)

    def get_model(self, key: str) -> type[models.Model]:
        return self.apps.get_model(APP_LABEL, key)

    def get_models(self) -> list[type[models.Model]]:
        return [self.apps.get_model(APP_LABEL, key) for key in self.bodies]

    @cached_property
    def estimated_bytes(self) -> int:
        return sum(ENTITY_BYTES + FIELD_BYTES * len(body["fields"]) for body in self.bodies.values())

    @cached_property
    def record_serializers(self) -> PerEntity:
        """The API serializer of each entity (DM-5), built on first use; imports validate rows with them too."""
        from dynamic_models.api.serializers import build_serializer

        serializers = PerEntity(self.bodies, lambda key: build_serializer(self.get_model(key), serializers))
        return serializers

    @cached_property
    def record_viewsets(self) -> PerEntity:
        """The API viewset of each entity, built on its first request (or OpenAPI schema)."""
        from dynamic_models.api.records import build_viewset

        return PerEntity(self.bodies, lambda key: build_viewset(key, self.record_serializers[key]))


class SnapshotCache:
    """The snapshots of the tenants a process serves, least recently used first, bounded by
    settings.TENANT_STATE_MEMORY_MB (their estimated memory, `Snapshot.estimated_bytes`).

    Past the bound, the least recently used are dropped (down to 80% of it, so that the URL
    resolvers, cleared with them, are not cleared on every new tenant) with the tenant's site:
    nothing else holds their classes, so they are freed; the tenant's next request builds them again.
    """

    def __init__(self):
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self.total_bytes = 0

    def get(self, schema_name: str) -> Snapshot | None:
        snapshot = self._snapshots.get(schema_name)
        if snapshot is not None:
            with contextlib.suppress(KeyError):  # Evicted by another thread in between: still usable now.
                self._snapshots.move_to_end(schema_name)
        return snapshot

    def put(self, snapshot: Snapshot) -> None:
        with self._lock:
            replaced = self._snapshots.pop(snapshot.schema_name, None)
            if replaced is not None:
                self.total_bytes -= replaced.estimated_bytes
            self._snapshots[snapshot.schema_name] = snapshot
            self.total_bytes += snapshot.estimated_bytes
            bound = settings.TENANT_STATE_MEMORY_MB * 1024 * 1024
            if self.total_bytes <= bound:
                return
            evicted = []
            while self.total_bytes > bound * 0.8 and len(self._snapshots) > 1:
                schema_name, oldest = self._snapshots.popitem(last=False)
                self.total_bytes -= oldest.estimated_bytes
                evicted.append(schema_name)
        _forget_sites(evicted)

    def pop(self, schema_name: str) -> None:
        with self._lock:
            snapshot = self._snapshots.pop(schema_name, None)
            if snapshot is not None:
                self.total_bytes -= snapshot.estimated_bytes
        _forget_sites([schema_name])

    def clear(self) -> None:
        with self._lock:
            schema_names = list(self._snapshots)
            self._snapshots.clear()
            self.total_bytes = 0
        _forget_sites(schema_names)

    def __contains__(self, schema_name: str) -> bool:
        return schema_name in self._snapshots

    def __len__(self) -> int:
        return len(self._snapshots)


def _forget_sites(schema_names: list[str]) -> None:
    if schema_names:
        from lowcode import site  # Imports the admin and DRF: not at start-up of a worker.

        site.forget(schema_names)


_snapshots = SnapshotCache()
_build_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def load_bodies() -> dict[str, dict]:
    """Read the current schema's published entity bodies."""
    from metadata.services import published_bodies

    return {key: definition.body for key, definition in sorted(published_bodies(ENTITY_KIND).items())}


def _load_published(previous: Snapshot | None) -> tuple[dict[str, dict], dict[str, str]]:
    """The current schema's published entity bodies and their checksums, by key; the bodies whose
    checksum `previous` holds are taken from it (decoding every body of a large tenant again
    after each publish costs more than the rest of the snapshot's rebuild)."""
    from metadata.models import Definition

    published = Definition.objects.filter(kind=ENTITY_KIND, status=Definition.Status.PUBLISHED)
    checksums = dict(published.values_list("key", "checksum"))
    known = previous.checksums if previous is not None else {}
    stale = [key for key, checksum in checksums.items() if known.get(key) != checksum]
    read = dict((published.filter(key__in=stale) if len(stale) < len(checksums) else published)
                .values_list("key", "body")) if stale else {}
    bodies = {key: read[key] if key in read else previous.bodies[key] for key in sorted(checksums)}
    return bodies, dict(sorted(checksums.items()))


def current() -> Snapshot:
    """Return the snapshot of the connection's tenant, rebuilding it if an entity publish made it stale."""
    tenant = connection.tenant
    schema_name = tenant.schema_name
    token = tenant.definition_versions.get(ENTITY_KIND)
    snapshot = _snapshots.get(schema_name)
    if snapshot is not None and snapshot.token == token:
        return snapshot
    with _locks_guard:
        lock = _build_locks.setdefault(schema_name, threading.Lock())
    with lock:
        snapshot = _snapshots.get(schema_name)
        if snapshot is None or snapshot.token != token:
            bodies, checksums = _load_published(snapshot)
            apps = build_apps(bodies) if snapshot is None else rebuilt_apps(snapshot, bodies)
            snapshot = Snapshot(schema_name, token, bodies, apps, checksums=checksums)
            _snapshots.put(snapshot)
    return snapshot


def get_model(key: str) -> type[models.Model]:
    """Return the current tenant's runtime model of entity `key` (LookupError if none)."""
    return current().get_model(key)


def published_entity_bodies() -> dict[str, dict]:
    return current().bodies


def forget(schema_name: str) -> None:
    """Drop a schema's cached snapshot and site (tenant deleted)."""
    _snapshots.pop(schema_name)
