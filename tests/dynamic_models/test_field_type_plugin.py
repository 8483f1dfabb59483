"""A field type added in one class works everywhere: admin, API, filters, OpenAPI, CSV (issue 10, item 5).

The type below is defined, registered and removed here, as a plugin would do it; nothing else
in the code base knows it.
"""

from __future__ import annotations

import re

import pytest
from django import forms
from django.core import validators
from django.db import connection, models
from drf_spectacular.validation import validate_schema

from dynamic_models import runtime, services
from dynamic_models.registries import FieldType, field_type_registry
from lowcode.apikeys import services as apikeys

from .conftest import design
from .test_api_transfer import read_csv, upload

HEX = r"^#[0-9a-f]{6}$"
RGB = re.compile(r"rgb\((\d{1,3}), *(\d{1,3}), *(\d{1,3})\)")


class ColorType(FieldType):
    """A colour, stored as `#rrggbb`, picked in a colour input and exported as `rgb(r, g, b)`."""

    type = "color"
    verbose_name = "Colour"
    filterable = True
    searchable = True
    lookups = ("exact", "in", "istartswith", "isnull")
    sample_value = "#2f6fdf"
    json_schema = {"format": "color"}

    def model_field_class(self, spec):
        return models.CharField

    def model_field_kwargs(self, spec):
        return {"max_length": 7, "validators": [validators.RegexValidator(HEX, "Enter a colour as #rrggbb.",
                                                                          code="color")]}

    def form_widget(self, spec):
        return forms.TextInput(attrs={"type": "color"})

    def export_value(self, value):
        red, green, blue = (int(value[i:i + 2], 16) for i in (1, 3, 5))
        return f"rgb({red}, {green}, {blue})"

    def import_value(self, value):
        match = RGB.fullmatch(value.strip()) if isinstance(value, str) else None
        return "#" + "".join(f"{int(part):02x}" for part in match.groups()) if match else value


@pytest.fixture
def color_type():
    field_type_registry.register(ColorType())
    yield
    field_type_registry.unregister("color")
    runtime.forget("acme")  # Its snapshot holds a model of the type.


@pytest.fixture
def swatches(tenant, color_type):
    entity = design("swatch", [
        {"key": "name", "type": "text", "required": True, "options": {"max_length": 50}},
        {"key": "tint", "type": "color", "filterable": True, "searchable": True},
    ], label="Swatch", label_plural="Swatches", display_field="name")
    services.publish(entity)
    return runtime.get_model("swatch").objects


@pytest.fixture
def api(swatches, acme, make_user, acme_client):
    user = make_user(acme, "frank", is_superuser=True, is_staff=True)
    connection.set_tenant(acme)
    _key, secret = apikeys.create_key(user, name="integration", scopes=["*:write"])
    acme_client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {secret}"
    return acme_client


def test_admin_adds_changes_and_filters_by_the_new_type(swatches, acme, make_user, acme_client):
    make_user(acme, "bea", is_staff=True, is_superuser=True)
    acme_client.post("/admin/login/", {"username": "bea", "password": "correct-horse-battery"})
    form = acme_client.get("/admin/data/swatch/add/").content.decode()
    assert re.search(r'<input type="color" name="tint"', form)  # The type's own widget.

    assert acme_client.post("/admin/data/swatch/add/", {"name": "Sky", "tint": "#2f6fdf"}).status_code == 302
    refused = acme_client.post("/admin/data/swatch/add/", {"name": "Mud", "tint": "brown"})
    assert "Enter a colour as #rrggbb." in refused.content.decode()
    sky = swatches.get()
    changed = acme_client.post(f"/admin/data/swatch/{sky.pk}/change/", {"name": "Sky", "tint": "#ff0000"})
    assert changed.status_code == 302
    assert swatches.get().tint == "#ff0000"

    swatches.create(name="Leaf", tint="#00aa00")
    listing = acme_client.get("/admin/data/swatch/?tint=%23ff0000").content.decode()
    assert "Sky" in listing and "Leaf" not in listing
    assert "Leaf" in acme_client.get("/admin/data/swatch/?q=%2300aa").content.decode()


def test_api_creates_filters_and_orders_by_the_new_type(api, swatches):
    for name, tint in [("Sky", "#2f6fdf"), ("Leaf", "#00aa00"), ("Rose", "#ff0066")]:
        response = api.post("/api/v1/data/swatch/", {"name": name, "tint": tint}, content_type="application/json")
        assert response.status_code == 201, response.json()
    bad = api.post("/api/v1/data/swatch/", {"name": "Mud", "tint": "brown"}, content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["tint"] == [{"code": "color", "message": "Enter a colour as #rrggbb."}]

    def names(query):
        response = api.get(f"/api/v1/data/swatch/?{query}")
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    assert names("tint=%2300aa00") == ["Leaf"]
    assert names("tint__istartswith=%23ff&ordering=tint") == ["Rose"]
    assert names("tint__in=%2300aa00,%23ff0066&ordering=-tint") == ["Rose", "Leaf"]
    assert names("ordering=tint") == ["Leaf", "Sky", "Rose"]
    # Only the type's lookups are filters.
    assert api.get("/api/v1/data/swatch/?tint__gt=%23000000").json()["tint__gt"][0]["code"] == "unknown_filter"


def test_openapi_has_the_types_schema_example_and_filters(api):
    schema = api.get("/api/schema/?format=json").json()
    validate_schema(schema)
    tint = schema["components"]["schemas"]["SwatchRequest"]["properties"]["tint"]
    assert tint["format"] == "color"  # The type's own keywords, beside the generated ones.
    assert tint["oneOf"][0] == {"type": "string", "pattern": HEX, "maxLength": 7}
    create = schema["paths"]["/api/v1/data/swatch/"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert [example["value"]["tint"] for example in examples.values()] == ["#2f6fdf"]
    listing = {parameter["name"] for parameter in schema["paths"]["/api/v1/data/swatch/"]["get"]["parameters"]}
    assert {"tint", "tint__in", "tint__istartswith", "tint__isnull"} <= listing
    assert "tint__gt" not in listing


def test_csv_export_and_import_use_the_types_format(api, swatches):
    swatches.create(name="Sky", tint="#2f6fdf")
    rows = read_csv(api.get("/api/v1/data/swatch/export.csv?fields=name,tint"))
    assert rows == [["name", "tint"], ["Sky", "rgb(47, 111, 223)"]]

    response = upload(api, "swatch", 'name,tint\nRose,"rgb(255, 0, 102)"\nLeaf,#00aa00\n')
    assert response.status_code == 201, response.json()
    assert dict(swatches.values_list("name", "tint")) == {"Sky": "#2f6fdf", "Rose": "#ff0066", "Leaf": "#00aa00"}
