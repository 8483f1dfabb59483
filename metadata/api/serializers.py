"""Serializers of the metadata API shared by every kind: publish and roll back bodies, versions,
diffs and bundles."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from lowcode.api.serializers import JSONBodySerializer
from metadata import bundles
from metadata.api.errors import ErrorSerializer
from metadata.models import Definition


class PublishSerializer(JSONBodySerializer):
    note = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    expected_version = serializers.IntegerField(min_value=0, allow_null=True, required=False, default=None,
                                                help_text=gettext_lazy(
                                                    "The live version you previewed (the preview's from_version; "
                                                    "0 for none): if it changed since, the answer is 409. Null or "
                                                    "absent: no check."))


class RollbackSerializer(JSONBodySerializer):
    to_version = serializers.IntegerField(min_value=1, allow_null=True, required=False, default=None,
                                          help_text=gettext_lazy("Default: the version before the live one."))


class VersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                          help_text=gettext_lazy("Who saved or published it; null if unknown."))
    note = serializers.CharField(source="change_note")
    created = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Definition
        fields = ["version", "status", "checksum", "author", "note", "created", "published_at"]


class ChangeSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["added", "removed", "changed", "reordered"])
    path = serializers.CharField(help_text=gettext_lazy("e.g. fields[category].options"))
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    changes = ChangeSerializer(many=True)
    summary = serializers.ListField(child=serializers.CharField())


class DiffQuerySerializer(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.IntegerField(min_value=1), "to": serializers.IntegerField(min_value=1)}


class BundleDefinitionSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=40)
    key = serializers.CharField(max_length=63)
    version = serializers.IntegerField(min_value=1, required=False)
    checksum = serializers.RegexField(r"^[0-9a-f]{64}$", required=False, help_text=gettext_lazy(
        "SHA-256 of the body; an import refuses a body edited by hand unless it is removed."))
    body = serializers.DictField()


class BundleSerializer(serializers.Serializer):
    """An app bundle: published definitions, each after the ones it depends on."""

    format = serializers.ChoiceField(choices=[bundles.FORMAT])
    format_version = serializers.ChoiceField(choices=[bundles.FORMAT_VERSION])
    app = serializers.CharField(max_length=63, allow_null=True, allow_blank=True, required=False)
    exported_at = serializers.CharField(max_length=64, allow_null=True, allow_blank=True, required=False)
    definitions = BundleDefinitionSerializer(many=True)


class BundleImportSerializer(BundleSerializer):
    dry_run = serializers.BooleanField(required=False, help_text=gettext_lazy(
        "Report what would happen and change nothing (also ?dry_run=true)."))


class BundleUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=gettext_lazy("The bundle's JSON file."))
    dry_run = serializers.BooleanField(required=False)


class ImportRowSerializer(serializers.Serializer):
    kind = serializers.CharField()
    key = serializers.CharField()
    action = serializers.ChoiceField(choices=[a.value for a in bundles.Action])
    message = serializers.CharField(allow_blank=True)
    preview = serializers.DictField(allow_null=True, help_text=gettext_lazy(
        "For an entity: the planned operations, SQL, impact and conflicts."))


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    report = ImportRowSerializer(many=True)


class ImportRefusedSerializer(ErrorSerializer):
    report = ImportRowSerializer(many=True)
