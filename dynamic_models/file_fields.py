"""File and image fields of entities (DM-1, issue 11): the two field types, their model and form
fields, and the record side of the one write path (`records.save`).

A single file is a foreign key to `files.StoredFile` (PROTECT, null in the database: `required`
is checked on write, so a required file field can be added to a table that has rows); `multiple`
is a many-to-many with its own link table `dm_<entity>_<field>`. A record field takes files the
acting user uploaded (an id from `POST /api/v1/files/`, or a multipart/admin upload, stored here
with the field's rules) or files it holds already; `files.services.set_attachments` records which
record field uses which file, so downloads can ask the "record" owner (dynamic_models.files_owner)
whether the viewer may read them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dynamic_models.registries import FieldType
from files import services as files
from files.models import FileAttachment, StoredFile

OWNER_TYPE = "record"
#: Files a bundle import restored, kept until records take them (dynamic_models.bundle_files).
BUNDLE_OWNER = "bundle"
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
_MIME_OR_EXTENSION = r"^(\.[A-Za-z0-9]{1,16}|[a-z0-9.+-]+/([a-z0-9.+-]+|\*))$"


# --- model fields -----------------------------------------------------------------------------

class _FileModelField:
    """What a file field's model field adds: its spec, and a form field that uploads."""

    lowcode_spec: dict = {}

    def formfield(self, **kwargs):
        return RecordFilesField(self.lowcode_spec, user=kwargs.get("user"), required=not self.blank,
                                label=self.verbose_name, help_text=self.help_text)

    def save_form_data(self, instance, data):
        """Not written by the model form: the admin hands the files to records.save (see RecordAdmin)."""

    def deconstruct(self):
        # As Django's own field: an ejected migration or model (dynamic_models.eject) needs no Lowcode code.
        name, _path, args, kwargs = super().deconstruct()
        base = models.ManyToManyField if self.many_to_many else models.ForeignKey
        return name, f"django.db.models.{base.__name__}", args, kwargs


class FileForeignKey(_FileModelField, models.ForeignKey):
    pass


class FileManyToManyField(_FileModelField, models.ManyToManyField):
    """Several files, in the link table dm_<entity>_<field>.

    Read and written through its link model only: the ORM's many-to-many manager filters
    StoredFile by a reverse relation that the global StoredFile model does not know (the field
    lives in a tenant's private registry, see runtime.SnapshotApps).
    """

    def _links(self, record):
        return self.remote_field.through.objects.filter(**{self.m2m_field_name(): record.pk})

    def _file_column(self) -> str:
        return self.remote_field.through._meta.get_field(self.m2m_reverse_field_name()).attname

    def files_of(self, record) -> models.QuerySet:
        if record.pk is None:
            return StoredFile.objects.none()
        return StoredFile.objects.filter(pk__in=self._links(record).values(self._file_column())).order_by("name", "pk")

    def value_from_object(self, obj):
        return list(self.files_of(obj))

    def set_files(self, record, stored_files: list[StoredFile]) -> None:
        links, column = self._links(record), self._file_column()
        wanted = [stored.pk for stored in stored_files]
        links.exclude(**{f"{column}__in": wanted}).delete()
        present = set(links.values_list(column, flat=True))
        record_column = self.remote_field.through._meta.get_field(self.m2m_field_name()).attname
        self.remote_field.through.objects.bulk_create([
            self.remote_field.through(**{record_column: record.pk, column: file_id})
            for file_id in dict.fromkeys(wanted) if file_id not in present])


FILE_MODEL_FIELDS = (FileForeignKey, FileManyToManyField)


# --- field types ------------------------------------------------------------------------------

class FileType(FieldType):
    """One or more files: values are StoredFile ids; reads show `files.services.describe()`."""

    type = "file"
    verbose_name = gettext_lazy("File")
    options_schema = {"type": "object", "additionalProperties": False, "properties": {
        "allowed_types": {"type": "array", "maxItems": 50, "uniqueItems": True,
                          "items": {"type": "string", "maxLength": 100, "pattern": _MIME_OR_EXTENSION}},
        "max_size": {"type": "integer", "minimum": 1},
        "multiple": {"type": "boolean"},
    }}
    can_be_unique = False
    orderable = False
    images_only = False
    sample_value = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

    @staticmethod
    def is_multiple(spec: dict) -> bool:
        return bool(spec.get("options", {}).get("multiple"))

    def rules(self, spec: dict) -> files.FileRules:
        options = spec.get("options", {})
        return files.FileRules(allowed_types=tuple(options.get("allowed_types", ())),
                               max_size=options.get("max_size"), images_only=self.images_only)

    def filter_lookups(self, spec):
        return [] if self.is_multiple(spec) else ["isnull"]  # Which records have a file; ids tell nothing.

    def example(self, spec):
        return [self.sample_value] if self.is_multiple(spec) else self.sample_value

    def expression_type(self, spec):
        return None

    def diagram_label(self, spec):
        return f"{self.type}[]" if self.is_multiple(spec) else self.type

    def model_field_class(self, spec):
        return FileManyToManyField if self.is_multiple(spec) else FileForeignKey

    def get_model_field(self, spec):
        common = {"verbose_name": spec.get("label") or spec["key"].replace("_", " "),
                  "help_text": spec.get("help_text", ""), "to": StoredFile, "blank": not spec.get("required")}
        if self.is_multiple(spec):
            field = FileManyToManyField(related_name=f"{spec['entity']}_{spec['key']}+",
                                        db_table=f"dm_{spec['entity']}_{spec['key']}", **common)
        else:
            # related_name="+": files.StoredFile must not learn one tenant's reverse accessors.
            field = FileForeignKey(on_delete=models.PROTECT, null=True, related_name="+",
                                   db_column=f"{spec['key']}_id", **common)
        field.lowcode_spec = spec
        return field

    def validate_spec(self, spec, entity_keys, field_keys):
        errors = []
        if spec.get("default") is not None:
            errors.append({"path": "default", "code": "invalid_default",
                           "message": _("A file field has no default.")})
        published = _published_spec(spec["id"]) if spec.get("id") else None
        if published is not None and published["type"] not in (FileType.type, ImageType.type):
            errors.append({"path": "type", "code": "type_changed", "message": _(
                "A published field cannot become a file field: add a new field instead.")})
        elif published is not None and self.is_multiple(published) != self.is_multiple(spec):
            errors.append({"path": "options.multiple", "code": "multiple_changed", "message": _(
                "A published file field cannot switch between one and several files: add a new field instead.")})
        return errors

    def export_value(self, value):
        items = value if isinstance(value, list) else [value]
        return "\n".join(f"{item['name']} <{item['open_url']}>" if item.get("open_url") else item["name"]
                         for item in items)

    def import_value(self, value):
        if not isinstance(value, str):
            return value
        ids = []
        for line in value.splitlines():  # `name <URL>` as exported, a URL or an id
            link = re.search(r"<([^<>]*)>\s*$", line)
            text = link.group(1) if link else line
            found = _UUID.findall(text)
            ids.append(found[-1] if found else text.strip())
        ids = [item for item in ids if item]
        return ids if len(ids) != 1 else ids[0]


class ImageType(FileType):
    """Images only (sniffed from the bytes), with their thumbnails."""

    type = "image"
    verbose_name = gettext_lazy("Image")
    images_only = True


FILE_FIELD_TYPES = [FileType, ImageType]


def _published_spec(field_id: str) -> dict | None:
    """The published spec of the field with this stable id, if any (publish validation)."""
    from dynamic_models import runtime

    for body in runtime.published_entity_bodies().values():
        for spec in body["fields"]:
            if spec.get("id") == field_id:
                return spec
    return None


# --- the record side --------------------------------------------------------------------------

def file_specs(model) -> dict[str, tuple[FileType, dict]]:
    """The file fields of a runtime model: {key: (field type, spec)}."""
    from dynamic_models.registries import field_type_registry

    result = {}
    for spec in model.lowcode_entity["fields"]:
        field_type = field_type_registry.get(spec["type"])
        if isinstance(field_type, FileType):
            result[spec["key"]] = (field_type, spec)
    return result


def current_files(record, key: str) -> list[StoredFile]:
    """The files the saved record's field holds."""
    field = record._meta.get_field(key)
    if record.pk is None:
        return []
    if field.many_to_many:
        return list(field.files_of(record))
    file_id = getattr(record, field.attname)
    return list(StoredFile.objects.filter(pk=file_id)) if file_id else []


def find(value) -> StoredFile:
    """The StoredFile of an id sent by a client; ValidationError (`does_not_exist`) if there is none here."""
    if isinstance(value, StoredFile):
        return value
    try:
        file_id = uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(_("%(value)s is not a file id.") % {"value": str(value)[:60]}, code="invalid") from None
    stored = StoredFile.objects.filter(pk=file_id).first()
    if stored is None:
        raise ValidationError(_("No file with id %(id)s.") % {"id": file_id}, code="does_not_exist")
    return stored


def describe(stored: StoredFile, record, key: str) -> dict:
    """A file of a record field as the API shows it: `files.services.describe()` and its stable URL."""
    owner = {"owner_type": OWNER_TYPE, "owner_key": record.lowcode_entity["key"], "object_id": str(record.pk),
             "field": key}
    return {**files.describe(stored, **owner), "open_url": files.open_url(stored, **owner)}


def audit_value(stored_files: list[StoredFile], multiple: bool):
    """How the audit trail shows a file field's value: ids and names."""
    values = [{"id": str(stored.pk), "name": stored.name} for stored in stored_files]
    return values if multiple else (values[0] if values else None)


@dataclass
class FileChange:
    """One file field of a write: its files before and after."""

    key: str
    multiple: bool
    before: list[StoredFile]
    after: list[StoredFile]

    @property
    def changed(self) -> bool:
        return [f.pk for f in self.before] != [f.pk for f in self.after]


def _may_use(stored: StoredFile, record, key: str, user) -> bool:
    """A file goes into a record field if the user uploaded it, the field holds or held it, or a
    bundle brought it (its records come after it: dynamic_models.bundle_files)."""
    if user is None or stored.uploaded_by_id == user.pk:
        return True
    attachments = FileAttachment.objects.filter(stored_file=stored)
    held = attachments.filter(owner_type=OWNER_TYPE, owner_key=record.lowcode_entity["key"], object_id=str(record.pk),
                              field=key) if record.pk is not None else attachments.none()
    return (held | attachments.filter(owner_type=BUNDLE_OWNER, detached_at__isnull=True)).exists()


def prepare(record, values: dict[str, list], *, user, adding: bool, loaded: dict, writable=None) -> list[FileChange]:
    """Check and store the file values of a write; set the single-file columns on `record`.

    :param values: {field key: its new files}, each a StoredFile, an id or an uploaded file
        (stored here with the field's rules, as a new version of the file it replaces). A
        single-file column set on the record directly counts as a value too.
    :param loaded: the record's values as loaded (by attname; empty when adding).
    :param writable: the caller's column access (None: the system); a field it may not write
        must keep its files.
    :raises ValidationError: {field key: [...]} for an unknown id, a file the user may not use,
        a file breaking the field's rules, a required field left empty, a read-only field.
    """
    changes, errors = [], {}
    for key, (field_type, spec) in file_specs(type(record)).items():
        multiple = field_type.is_multiple(spec)
        attname = record._meta.get_field(key).attname
        if key in values:
            items = list(values[key] or [])
        elif not multiple and getattr(record, attname) != loaded.get(attname):
            items = [getattr(record, attname)] if getattr(record, attname) else []
        elif adding:
            items = []
        else:
            continue
        if multiple:
            before = [] if adding else current_files(record, key)
        else:
            before = list(StoredFile.objects.filter(pk=loaded[attname])) if loaded.get(attname) else []
        try:
            after = _stored(record, key, field_type, spec, items, before, user=user, writable=writable)
        except ValidationError as error:
            errors[key] = error.error_list
            continue
        if spec.get("required") and not after:
            errors[key] = [ValidationError(_("This field is required."), code="required")]
            continue
        if not multiple:
            setattr(record, attname, after[0].pk if after else None)
        changes.append(FileChange(key, multiple, before, after))
    if errors:
        raise ValidationError(errors)
    return changes


def _stored(record, key, field_type, spec, items, before, *, user, writable) -> list[StoredFile]:
    multiple = field_type.is_multiple(spec)
    if not multiple and len(items) > 1:
        raise ValidationError(_("This field holds one file."), code="max_files")
    known = {stored.pk for stored in before}
    found = [find(item) for item in items if not isinstance(item, UploadedFile)]
    uploads = [item for item in items if isinstance(item, UploadedFile)]
    if writable is not None and not writable.can_write(key) and (uploads or {f.pk for f in found} != known):
        raise ValidationError(_("You may not change this field."), code="read_only")
    rules = field_type.rules(spec)
    for stored in found:
        if stored.pk in known:
            continue
        if not _may_use(stored, record, key, user):
            # Not the user's upload: as unknown as an id of another tenant.
            raise ValidationError(_("No file with id %(id)s.") % {"id": stored.pk}, code="does_not_exist")
        files.check_rules(stored, rules)
    previous = before[0] if before and not multiple else None
    new = [files.upload(upload, name=upload.name, user=user, rules=rules, previous=previous) for upload in uploads]
    after, seen = [], set()
    for stored in [*found, *new]:
        if stored.pk not in seen:
            seen.add(stored.pk)
            after.append(stored)
    return after


def attach(record, changes: list[FileChange], *, user) -> None:
    """After the record's row is written: fill the link tables and record the attachments."""
    for change in changes:
        if not change.changed:
            continue
        if change.multiple:
            record._meta.get_field(change.key).set_files(record, change.after)
        files.set_attachments(owner_type=OWNER_TYPE, owner_key=record.lowcode_entity["key"], object_id=str(record.pk),
                              field=change.key, files=change.after, user=user)


def release(record) -> None:
    """The record is purged: its files are no longer its own (garbage collection takes them)."""
    files.release(owner_type=OWNER_TYPE, owner_key=record.lowcode_entity["key"], object_id=str(record.pk))


# --- forms (the generated admin) --------------------------------------------------------------

class RecordFilesWidget(forms.Widget):
    """The files of a record field: each with its thumbnail and a link, a remove box, and an upload input."""

    template_name = "dynamic_models/widgets/record_files.html"
    needs_multipart_form = True

    def __init__(self, *, multiple: bool, accept: str = "", attrs=None):
        super().__init__(attrs)
        self.multiple = multiple
        self.accept = accept
        #: The record the form edits (set by the form: its files' links name it).
        self.record = None

    def value_from_datadict(self, data, files_data, name):
        return {"uploads": files_data.getlist(name), "remove": data.getlist(f"{name}-remove")}

    def value_omitted_from_data(self, data, files_data, name):
        return False

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        record = self.record
        shown = []
        if record is not None and record.pk is not None:
            for stored in _initial_files(value):
                shown.append(describe(stored, record, name))
        context["widget"].update({"files": shown, "multiple": self.multiple, "accept": self.accept})
        return context


def _initial_files(value) -> list[StoredFile]:
    """The form's initial value (an id, or StoredFiles of a many-to-many) as StoredFiles."""
    if value in (None, "", []):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    ids = [item.pk if isinstance(item, StoredFile) else item for item in items]
    by_id = StoredFile.objects.in_bulk(ids)
    return [by_id[file_id] for file_id in ids if file_id in by_id]


class RecordFilesField(forms.Field):
    """Uploads go through files.services.upload with the field's rules as the form is cleaned,
    so a refused file is an error on the form; `clean()` returns the field's files."""

    def __init__(self, spec: dict, *, user=None, **kwargs):
        from dynamic_models.registries import field_type_registry

        self.field_type = field_type_registry.get(spec["type"])
        self.spec = spec
        self.user = user
        multiple = self.field_type.is_multiple(spec)
        accept = ",".join(spec.get("options", {}).get("allowed_types", ())) or (
            "image/*" if self.field_type.images_only else "")
        super().__init__(widget=RecordFilesWidget(multiple=multiple, accept=accept), **kwargs)

    def bound_data(self, data, initial):
        return initial  # A file input cannot show what was posted.

    def has_changed(self, initial, data):
        return bool(data and (data["uploads"] or data["remove"]))

    def _clean_bound_field(self, bf):
        return self.clean(bf.data, bf.initial)

    def clean(self, value, initial=None):
        current = _initial_files(initial)
        removed = set(value["remove"]) if value else set()
        uploads = value["uploads"] if value else []
        kept = [stored for stored in current if str(stored.pk) not in removed]
        multiple = self.field_type.is_multiple(self.spec)
        if not multiple and len(uploads) > 1:
            raise ValidationError(_("This field holds one file."), code="max_files")
        rules = self.field_type.rules(self.spec)
        previous = current[0] if current and not multiple else None
        new = [files.upload(upload, name=upload.name, user=self.user, rules=rules, previous=previous)
               for upload in uploads]
        result = [*kept, *new] if multiple else (new or kept)
        if self.required and not result:
            raise ValidationError(self.error_messages["required"], code="required")
        return result
