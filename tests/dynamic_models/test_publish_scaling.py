"""A publish costs the same in a tenant of any size (issue 17): it builds the models of the entity
and of those related to it, and the next snapshot moves the other entities' classes over."""

from __future__ import annotations

import itertools

import pytest

from dynamic_models import runtime, services

_ids = itertools.count(1)


def spec(key: str, type_: str = "text", **options) -> dict:
    return {"id": f"fld{next(_ids):05d}", "key": key, "type": type_, "label": key, "options": options}


def relation(key: str, target: str, cardinality: str = "many_to_one") -> dict:
    return spec(key, "relation", target=target, cardinality=cardinality)


def entity(key: str, *fields: dict) -> dict:
    return {"key": key, "label": key.title(), "fields": [spec("name", max_length=80), *fields]}


def publish(*bodies: dict) -> None:
    for body in bodies:
        services.publish_body(body)


def republish(key: str, *extra: dict, label: str | None = None) -> dict:
    body = dict(runtime.current().bodies[key])
    body["fields"] = [*body["fields"], *extra]
    body["label"] = label or body["label"]
    services.publish_body(body)
    return body


def shape(apps) -> dict:
    """Every model of a registry with its fields, forward and reverse, and what they point to."""
    return {model._meta.label_lower: sorted(
        (f.name, type(f).__name__, f.related_model._meta.label_lower if f.related_model else "")
        for f in model._meta.get_fields(include_hidden=True))
        for model in apps.get_models(include_auto_created=True)}


def stale_relations(apps) -> list[str]:
    """Relations (forward and reverse) to a class that is not the registry's own of that name."""
    return [f"{model._meta.label_lower}.{f.name}" for model in apps.get_models(include_auto_created=True)
            for f in model._meta.get_fields(include_hidden=True)
            if f.related_model is not None and f.related_model._meta.app_label == runtime.APP_LABEL
            and apps.get_model(f.related_model._meta.label_lower) is not f.related_model]


@pytest.fixture
def counted_builds(monkeypatch) -> list[str]:
    """The keys of the entity models built from now on (the real builder runs)."""
    built, real = [], runtime.build_model

    def counting(apps, body):
        built.append(body["key"])
        return real(apps, body)

    monkeypatch.setattr(runtime, "build_model", counting)
    return built


def chain(start: int, end: int) -> list[dict]:
    """Entities e<start>..e<end - 1>, each pointing at the one before (many-to-one) and, every
    third, at the one three before (many-to-many): one connected graph, as real tenants are."""
    bodies = []
    for index in range(start, end):
        fields = [relation("previous", f"e{index - 1:02d}")] if index else []
        if index >= 3 and index % 3 == 0:
            fields.append(relation("linked", f"e{index - 3:02d}", "many_to_many"))
        bodies.append(entity(f"e{index:02d}", *fields))
    return bodies


def test_one_publish_builds_as_many_models_in_a_tenant_of_6_or_24_entities(tenant, counted_builds):
    publish(*chain(0, 6))
    runtime.current()
    counted_builds.clear()
    republish("e04", label="Small tenant")
    runtime.current()  # What the next request pays.
    small = sorted(counted_builds)

    publish(*chain(6, 24))
    runtime.current()
    counted_builds.clear()
    republish("e04", label="Large tenant")
    snapshot = runtime.current()
    large = sorted(counted_builds)

    # The publish builds e04 (old and new: the snapshot was fresh, the new one) with its targets;
    # the next snapshot builds e04, its targets and the entities pointing at it.
    assert small == large == sorted(["e03", "e04", "e03", "e04", "e05"])
    assert snapshot.get_model("e04")._meta.verbose_name == "Large tenant"
    assert stale_relations(snapshot.apps) == []
    assert shape(snapshot.apps) == shape(runtime.build_apps(snapshot.bodies))


@pytest.fixture
def graph(tenant) -> None:
    """e <- y <- z (many-to-one, and many-to-many y), t <- e, t <- w, e <- o (one-to-one), u alone;
    t counts the e pointing at it and sums their amounts."""
    publish(entity("t"), entity("u"), entity("w", relation("t", "t")),
            entity("e", spec("amount", "decimal", max_digits=10, decimal_places=2), relation("t", "t")),
            entity("y", relation("e", "e")),
            entity("z", relation("y", "y"), relation("ys", "y", "many_to_many")),
            entity("o", relation("e", "e", "one_to_one")))
    body = dict(runtime.current().bodies["t"])
    body["fields"] = [*body["fields"], spec("es", "count", relation="e.t"),
                      spec("spent", "rollup", relation="e.t", field="amount", function="sum")]
    services.publish_body(body)


def test_the_next_snapshot_moves_unrelated_classes_and_points_them_at_the_rebuilt_ones(graph, counted_builds):
    before = runtime.current()
    moved = {key: before.get_model(key) for key in ("u", "z", "w")}
    counted_builds.clear()
    republish("e", spec("extra", max_length=20), label="Changed")
    snapshot = runtime.current()

    # e, its target t, and y, o pointing at it, are built again; z, w and u move over.
    assert sorted(set(counted_builds)) == ["e", "o", "t", "y"]
    for key, model in moved.items():
        assert snapshot.get_model(key) is model and model._meta.apps is snapshot.apps
    assert stale_relations(snapshot.apps) == []
    assert shape(snapshot.apps) == shape(runtime.build_apps(snapshot.bodies))

    # The moved classes work against the new ones, in both directions and through link tables.
    T, E, Y, Z, W = (snapshot.get_model(key) for key in "teyzw")
    target = T.objects.create(name="target")
    first = E.objects.create(name="first", extra="new", amount="2.50", t=target)
    E.objects.create(name="second", amount="1.50", t=target)
    parent = Y.objects.create(name="parent", e=first)
    child = Z.objects.create(name="child", y=parent)
    child.ys.add(parent)
    W.objects.create(name="w", t=target)
    assert list(Z.objects.filter(y__e__extra="new")) == [child]
    assert list(Z.objects.filter(ys__e__extra="new")) == [child]
    assert list(parent.z_ys_set.all()) == [child] and list(parent.z_y_set.all()) == [child]
    assert Z.objects.select_related("y__e").get().y.e.extra == "new"
    assert list(T.objects.filter(w_t_set__name="w")) == [target]
    counted = T.objects.get()
    assert (counted.es, counted.spent) == (2, 4)


def test_a_changed_relation_rebuilds_its_old_and_new_targets(graph, counted_builds):
    body = dict(runtime.current().bodies["y"])
    counted_builds.clear()
    body["fields"] = [spec if spec["key"] != "e" else {**spec, "options": {"target": "u"}} for spec in body["fields"]]
    services.publish_body(body)
    snapshot = runtime.current()

    assert {"y", "e", "u", "z"} <= set(counted_builds)
    assert stale_relations(snapshot.apps) == []
    assert shape(snapshot.apps) == shape(runtime.build_apps(snapshot.bodies))
    assert not hasattr(snapshot.get_model("e"), "y_e_set") and hasattr(snapshot.get_model("u"), "y_e_set")


def test_a_replaced_snapshots_body_of_a_type_no_longer_registered_points_nowhere():
    """A rebuild reads the replaced snapshot's bodies: one of them may hold a type whose plugin was
    disabled since (or a test's, unregistered); the rebuild must not fail on it."""
    body = {"key": "swatch", "fields": [
        {"key": "shade", "type": "no_such_type", "options": {"target": "project"}},
        {"key": "project", "type": "relation", "options": {"target": "project"}},
    ]}
    assert runtime.relation_targets(body) == {"project"}
