"""CSV/XLSX export and import of records (DM-5).

Exports stream: CSV row by row, XLSX through openpyxl's write-only workbook into a temporary
file, both over a chunked database cursor, so memory stays flat whatever the number of rows.
Text a spreadsheet would run as a formula is exported inert (OWASP CSV injection): CSV cells get
a `'` before it, which an import takes off again; XLSX cells are text with Excel's quote prefix.

Imports read a file (CSV or XLSX, first row = field keys) or a JSON list into rows, validate
every row with the entity's API serializer (the one validation path, DM-6) and save all rows
or none. A dry run does the same inside a transaction that is rolled back. Imports with more
rows than `API_IMPORT_SYNC_MAX_ROWS` become an `ImportJob` run by a Celery worker. XLSX files
are checked for their unpacked size and compression ratio before they are opened (zip bombs),
and an import stops, writing nothing, once its tenant is suspended.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import IO

import openpyxl
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from rest_framework import serializers
from rest_framework.settings import api_settings

from audit import services as audit
from dynamic_models import audit_actions as dm_actions
from dynamic_models import runtime
from dynamic_models.api.serializers import MaskedField, json_types
from dynamic_models.models import ImportJob
from dynamic_models.registries import FieldType, field_type_registry
from files import safety
from lowcode.api.parsers import JSONTooDeep, load_json
from lowcode.tenancy import quotas
from lowcode.tenancy import services as tenancy

logger = logging.getLogger(__name__)

#: Records fetched per database round trip while exporting.
EXPORT_CHUNK_ROWS = 2000
#: A running job reports its progress every this many rows.
PROGRESS_EVERY = 200
#: Row errors kept in a report; the rest are only counted (`errors_omitted`).
MAX_REPORTED_ERRORS = 1000
PROGRESS_TIMEOUT = 24 * 3600
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # Excel 97-2003 (.xls)
_OMIT = object()


class TransferError(Exception):
    """An import the service cannot read: a bad file, too many rows, unknown columns.

    `field` names the part of the request at fault (`file` or `rows`), `code` is stable.
    """

    def __init__(self, message: str, *, code: str, field: str = "file"):
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


class TooLarge(TransferError):
    """The upload exceeds API_IMPORT_MAX_BYTES."""


def too_large_error() -> TooLarge:
    return TooLarge(_("The upload is larger than %(mb)s MB; split the file.") % {
        "mb": round(settings.API_IMPORT_MAX_BYTES / (1024 * 1024), 1)}, code="too_large")


def record_serializer(entity_key: str) -> type[serializers.ModelSerializer]:
    """Return the API serializer class of entity `entity_key` in the current tenant."""
    try:
        return runtime.current().record_serializers[entity_key]
    except KeyError:
        raise TransferError(_("No published entity %(key)s.") % {"key": entity_key}, code="unknown_entity",
                            field="entity") from None


# --- export ---------------------------------------------------------------------------------

def export_filename(entity_key: str, file_format: str) -> str:
    return f"{entity_key}-{timezone.localdate().isoformat()}.{file_format}"


def export_rows(serializer: serializers.Serializer, queryset) -> Iterator[dict]:
    """Yield each record of `queryset` as the API shows it, fetching records in chunks."""
    for record in queryset.iterator(chunk_size=EXPORT_CHUNK_ROWS):
        yield serializer.to_representation(record)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # Multiple choices, many-to-many ids.
        return ",".join(_text(item) for item in value)
    if isinstance(value, dict):  # An expanded record.
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_text(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _text_format(serializer_field) -> Callable[[object], str]:
    return _json_text if isinstance(serializer_field, serializers.JSONField) else _text


def _columns(serializer) -> list[tuple[str, serializers.Field]]:
    return list(serializer.fields.items())


def _field_types(serializer) -> dict[str, FieldType]:
    """The field type of each column whose value is its own (a masked value is text)."""
    fields = serializer.fields
    return {spec["key"]: field_type_registry.get(spec["type"]) for spec in serializer.entity.get("fields", ())
            if not isinstance(fields.get(spec["key"]), MaskedField)}


def _column_formats(serializer, file_format: Callable) -> list[Callable[[object], object]]:
    """How each column's value goes into the file: its field type's export value, in the file's format."""
    field_types = _field_types(serializer)

    def typed(fmt, field_type):
        return lambda value: fmt(None if value is None else field_type.export_value(value))

    return [typed(file_format(serializer_field), field_types[name]) if name in field_types
            else file_format(serializer_field) for name, serializer_field in _columns(serializer)]


#: How a formula starts in a spreadsheet (OWASP CSV injection), after any quotes of an earlier export.
_FORMULA_START = re.compile(r"'*[=+\-@\t\r]")
#: Numbers start with + or - too, and run nothing.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _runs_as_formula(text: str) -> bool:
    return bool(_FORMULA_START.match(text)) and not _NUMBER.fullmatch(text)


def _inert(text: str) -> str:
    """A CSV cell's text that no spreadsheet runs: a `'` before a formula (taken off on import)."""
    return "'" + text if _runs_as_formula(text) else text


def _uninert(text: str) -> str:
    """The exported text of an `_inert` cell: exactly the value that was exported."""
    return text[1:] if text.startswith("'") and _runs_as_formula(text[1:]) else text


def csv_stream(serializer: serializers.Serializer, queryset) -> Iterator[bytes]:
    """Yield a CSV file of `queryset`: the columns are the serializer's fields.

    It starts with a byte order mark, so Excel reads the UTF-8 (Chinese text included).
    Rows are yielded in blocks of about 64 KB.
    """
    columns = _columns(serializer)
    formats = _column_formats(serializer, _text_format)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow([name for name, _field in columns])
    for row in export_rows(serializer, queryset):
        writer.writerow([_inert(fmt(row.get(name))) for (name, _field), fmt in zip(columns, formats, strict=True)])
        if buffer.tell() > 65536:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _xlsx_format(serializer_field) -> Callable[[object], object]:
    """How a representation value goes into a cell: numbers and dates typed, the rest as text."""
    if isinstance(serializer_field, serializers.DecimalField):
        return lambda value: Decimal(value) if isinstance(value, str) else value
    if isinstance(serializer_field, serializers.DateField):
        return lambda value: datetime.date.fromisoformat(value) if isinstance(value, str) else value
    if isinstance(serializer_field, serializers.IntegerField | serializers.FloatField | serializers.BooleanField):
        return lambda value: value
    text = _text_format(serializer_field)

    def cell(value):
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # Ids of relations and users.
        return ILLEGAL_CHARACTERS_RE.sub("", text(value)) or None

    return cell


def _xlsx_cell(sheet, value):
    if isinstance(value, str) and _runs_as_formula(value):
        # openpyxl would write "=..." as a formula, and Excel would run any of them once edited:
        # text with the quote prefix keeps user data inert, and unchanged on re-import.
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        cell.quotePrefix = True
        return cell
    return value


def xlsx_file(serializer: serializers.Serializer, queryset, *, title: str) -> IO[bytes]:
    """Write `queryset` as an XLSX workbook and return the file, positioned at its start.

    Memory stays flat: the write-only workbook streams rows to a temporary file as they come,
    and the finished workbook is written to a temporary file that spills to disk above 1 MB.
    """
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    columns = _columns(serializer)
    formats = _column_formats(serializer, _xlsx_format)
    sheet.append([name for name, _field in columns])
    for row in export_rows(serializer, queryset):
        sheet.append([_xlsx_cell(sheet, fmt(row.get(name)))
                      for (name, _field), fmt in zip(columns, formats, strict=True)])
    output = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (the response closes it)
    workbook.save(output)
    output.seek(0)
    return output


@dataclass
class ExportFile:
    """An export as a download: its name, content type and content (CSV bytes streamed, or an XLSX file)."""

    filename: str
    content_type: str
    content: Iterator[bytes] | IO[bytes]


def export_file(entity_key: str, serializer: serializers.Serializer, queryset, file_format: str, *, user,
                query: dict) -> ExportFile:
    """Export `queryset` as the API shows it to `user` (the serializer's context), audited as one
    event naming the format and the query that chose the records (the API and admin both export so)."""
    audit.record(dm_actions.RECORDS_EXPORT.of(entity_key), target_type=f"data.{entity_key}", actor=user,
                 data={"format": file_format, "query": query})
    filename = export_filename(entity_key, file_format)
    if file_format == "xlsx":
        return ExportFile(filename, XLSX_CONTENT_TYPE, xlsx_file(serializer, queryset, title=entity_key))
    return ExportFile(filename, "text/csv; charset=utf-8", csv_stream(serializer, queryset))


# --- reading imports ------------------------------------------------------------------------

@dataclass
class ImportSource:
    """What a client sent: a file's bytes (`csv`, `xlsx`) or a JSON list of rows (`json`)."""

    file_format: str
    payload: bytes


@dataclass
class ParsedRows:
    """Rows as (number, values) pairs: the 1-based data row of the file (header excluded)."""

    rows: list[tuple[int, object]]
    ignored_columns: list[str] = field(default_factory=list)


def source_from_upload(upload) -> ImportSource:
    """Read an uploaded file (a Django UploadedFile); its format comes from its name, type or bytes."""
    if upload.size is not None and upload.size > settings.API_IMPORT_MAX_BYTES:
        raise too_large_error()
    payload = b"".join(upload.chunks())
    if len(payload) > settings.API_IMPORT_MAX_BYTES:
        raise too_large_error()
    if not payload:
        raise TransferError(_("The file is empty."), code="empty")
    return ImportSource(_detect_format(upload.name or "", upload.content_type or "", payload[:8]), payload)


def source_from_rows(rows) -> ImportSource:
    """Take a JSON list of row objects (already parsed from the request)."""
    if not isinstance(rows, list):
        raise TransferError(_("Send a JSON list of records, or upload a CSV or XLSX file as `file`."),
                            code="not_a_list", field="rows")
    _check_count(len(rows), field_name="rows")
    not_objects = [index for index, row in enumerate(rows, start=1) if not isinstance(row, dict)]
    if not_objects:  # The request's shape is wrong, not a row's values: refused even in a dry run.
        raise TransferError(_("Each row must be a JSON object of field values; these rows are not: %(rows)s.")
                            % {"rows": ", ".join(map(str, not_objects[:20]))}, code="not_an_object", field="rows")
    return ImportSource(ImportJob.Format.JSON, json.dumps(rows).encode())


def _check_count(count: int, *, field_name: str = "file") -> None:
    if count == 0:
        raise TransferError(_("There are no rows to import."), code="no_rows", field=field_name)
    if count > settings.API_IMPORT_MAX_ROWS:
        raise _too_many_rows(field_name)


def _too_many_rows(field_name: str) -> TransferError:
    return TransferError(_("At most %(max)d rows per import; split the file.") % {"max": settings.API_IMPORT_MAX_ROWS},
                         code="too_many_rows", field=field_name)


def _detect_format(name: str, content_type: str, head: bytes) -> str:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if head.startswith(_OLE_MAGIC) or suffix == "xls":
        raise TransferError(_("Old Excel files (.xls) are not supported: save the sheet as .xlsx or CSV."),
                            code="unsupported_format")
    if head.startswith(_ZIP_MAGIC) or suffix == "xlsx" or content_type == XLSX_CONTENT_TYPE:
        return ImportJob.Format.XLSX
    if suffix in ("csv", "txt") or content_type in ("text/csv", "application/csv", "text/plain"):
        return ImportJob.Format.CSV
    raise TransferError(_("Upload a .csv or .xlsx file."), code="unsupported_format")


def read_rows(serializer_class, source: ImportSource) -> ParsedRows:
    """Parse `source` into rows of values the serializer reads.

    File cells: an empty cell is omitted (the field's default or null), multiple values are
    comma-separated, booleans are true/false, 1/0 or yes/no, relations are ids.
    Columns of system or read-only fields (as in an export) are ignored.

    :raises TransferError: for a file that cannot be read, a header naming unknown fields,
        no rows or too many.
    """
    if source.file_format == ImportJob.Format.JSON:
        rows = json.loads(source.payload)
        _check_count(len(rows), field_name="rows")
        return ParsedRows(list(enumerate(rows, 1)))
    cells = _csv_cells(source.payload) if source.file_format == ImportJob.Format.CSV else _xlsx_cells(source.payload)
    return _table(serializer_class, cells)


def _decode(payload: bytes) -> str:
    if b"\x00" in payload[:8192]:
        raise TransferError(_("This is not a CSV file (it holds binary data)."), code="invalid_file")
    try:
        return payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Excel on Chinese Windows saves "CSV" in the ANSI code page (GBK), which GB 18030 covers.
        return payload.decode("gb18030")
    except UnicodeDecodeError:
        raise TransferError(_("The CSV file is not UTF-8 text; save it as CSV UTF-8."), code="invalid_encoding") from None


def _csv_cells(payload: bytes) -> Iterator[list]:
    text = _decode(payload)
    header = text.split("\n", 1)[0]
    # Excel writes ";" in locales with a decimal comma; field keys never contain a delimiter.
    delimiter = max(",;\t", key=header.count)
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as error:
        raise TransferError(_("The CSV file cannot be read: %(error)s") % {"error": error}, code="invalid_file") from None


def _check_unpacked_size(payload: bytes) -> None:
    """Refuse a workbook whose zip declares more bytes, or a higher compression, than the import
    limits, before anything is unpacked: a zip bomb of 1 MB takes a minute and gigabytes to open."""
    try:
        safety.check_zip(io.BytesIO(payload), what=_("The XLSX file"),
                         max_unpacked_bytes=settings.API_IMPORT_MAX_UNPACKED_BYTES,
                         max_ratio=settings.API_IMPORT_MAX_COMPRESSION_RATIO)
    except ValidationError as error:
        if error.code != "invalid_zip":  # Not a zip: openpyxl says what is wrong with it.
            raise TransferError(error.messages[0], code=error.code) from None


def _xlsx_cells(payload: bytes) -> Iterator[list]:
    _check_unpacked_size(payload)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(payload), read_only=True, data_only=True)
    except Exception:  # openpyxl fails on broken files in many ways (zip, XML, key errors).
        raise TransferError(_("The XLSX file cannot be read; is it a valid Excel workbook?"),
                            code="invalid_file") from None
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    except Exception:
        raise TransferError(_("The XLSX file cannot be read; is it a valid Excel workbook?"),
                            code="invalid_file") from None
    finally:
        workbook.close()


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _table(serializer_class, cells: Iterator[list]) -> ParsedRows:
    header_cells = next(cells, None) or []
    header = ["" if cell is None else str(cell).strip() for cell in header_cells]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise TransferError(_("The file is empty: its first row must name the fields."), code="empty")
    if "" in header:
        raise TransferError(_("Column %(number)d has no field key in the header row.") % {
            "number": header.index("") + 1}, code="blank_column")
    duplicates = sorted({key for key in header if header.count(key) > 1})
    if duplicates:
        raise TransferError(_("Columns appear twice: %(keys)s.") % {"keys": ", ".join(duplicates)},
                            code="duplicate_columns")
    serializer = serializer_class()
    fields, field_types = serializer.fields, _field_types(serializer)
    unknown = [key for key in header if key not in fields]
    if unknown:
        writable = [name for name, serializer_field in fields.items() if not serializer_field.read_only]
        raise TransferError(_("Unknown columns: %(keys)s. The header row holds field keys, of: %(allowed)s.") % {
            "keys": ", ".join(unknown), "allowed": ", ".join(writable)}, code="unknown_columns")
    ignored = [key for key in header if key in serializer_class.ignored_keys or fields[key].read_only]
    width, limit, rows = len(header), settings.API_IMPORT_MAX_ROWS, []
    for number, values in enumerate(cells, 1):
        if all(_blank(value) for value in values):
            continue  # Spreadsheets keep empty, formatted rows.
        if any(not _blank(value) for value in values[width:]):
            raise TransferError(_("Row %(row)d has more cells than the header has columns.") % {"row": number},
                                code="extra_cells")
        if len(rows) >= limit:
            raise _too_many_rows("file")
        row = {}
        for key, value in zip(header, values, strict=False):  # Short rows: missing cells are empty.
            if key not in ignored:
                try:
                    parsed = _cell_value(fields[key], value, field_types.get(key))
                except JSONTooDeep as error:
                    raise TransferError(_("Row %(row)d, column %(key)s: %(error)s") % {
                        "row": number, "key": key, "error": error}, code="too_deep") from None
                if parsed is not _OMIT:
                    row[key] = parsed
        rows.append((number, row))
    _check_count(len(rows))
    return ParsedRows(rows, ignored)


_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def _cell_value(serializer_field, value, field_type: FieldType | None = None):
    """A file cell as the value a JSON request would carry (the serializer checks JSON types)."""
    if _blank(value):
        return _OMIT
    if isinstance(value, str):
        value = _uninert(value)
    if field_type is not None:
        value = field_type.import_value(value)
    if isinstance(serializer_field, serializers.JSONField):
        if isinstance(value, str):
            try:
                return load_json(value)
            except JSONTooDeep:
                raise
            except ValueError:
                return value
        return value
    expected = json_types(serializer_field)
    if list in expected:  # Multiple choices, many-to-many ids: comma-separated.
        parts = [part.strip() for part in value.split(",")] if isinstance(value, str) else [value]
        child = getattr(serializer_field, "child_relation", None) or getattr(serializer_field, "child", None)
        return [_scalar(child, part) for part in parts if not _blank(part)]
    return _scalar(serializer_field, value)


def _scalar(serializer_field, value):
    expected = json_types(serializer_field) if serializer_field is not None else ()
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores every number as a float: an id, a count, a code.
    if isinstance(value, datetime.datetime):  # XLSX date cells.
        if isinstance(serializer_field, serializers.DateField):
            value = value.date()
        elif isinstance(serializer_field, serializers.TimeField):
            value = value.time()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if not expected:
        return value
    if isinstance(value, str):
        text = value.strip()
        if bool in expected:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
        elif int in expected and str not in expected and text.lstrip("-").isdigit():
            return int(text)
        return value  # Anything else is the serializer's to judge (with its usual error).
    if bool in expected and value in (0, 1) and not isinstance(value, bool):
        return bool(value)
    if str in expected and not any(isinstance(value, kind) for kind in expected):
        return _text(value)  # A number in a text or choice column.
    return value


# --- importing ------------------------------------------------------------------------------

def _details(detail) -> dict:
    """A row's validation errors as {"field": [{"code", "message"}]} with plain strings."""
    if not isinstance(detail, dict):
        detail = {api_settings.NON_FIELD_ERRORS_KEY: detail if isinstance(detail, list) else [detail]}
    full = serializers.ValidationError(detail).get_full_details()

    def plain(value):
        if isinstance(value, dict):
            if set(value) == {"message", "code"}:
                return {"code": str(value["code"]), "message": str(value["message"])}
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return str(value)

    return plain(full)


def import_rows(entity_key: str, rows: list[tuple[int, object]], *, user=None, dry_run: bool = False,
                progress: Callable[[int], None] | None = None) -> dict:
    """Validate and save `rows` ((number, values) pairs) as records of `entity_key`, all or none.

    Each row goes through the entity's API serializer. Rows are saved as they pass, inside one
    transaction, so uniqueness between rows of the same file is checked as in the real import;
    the transaction is rolled back for a dry run or when any row fails.

    :param user: recorded as the records' creator.
    :param progress: called with the number of rows processed, every PROGRESS_EVERY rows.
    :returns: the report: dry_run, total, valid, created and errors ({"row", "errors"} per bad row).
    :raises TransferError: no such entity, or the tenant was suspended (nothing is written).
    """
    serializer_class = record_serializer(entity_key)
    # One serializer for every row, as a list serializer does: its fields are built once.
    serializer = serializer_class(context={"request": None, "user": user, "fields": None, "expand": set()})
    report = {"dry_run": dry_run, "total": len(rows), "valid": 0, "created": 0, "errors": []}
    omitted = 0
    # Checked once for the whole file: counting per row would read every table again each time.
    try:
        with transaction.atomic(), quotas.reserved("records", len(rows)):
            for index, (number, row) in enumerate(rows, 1):
                if index % PROGRESS_EVERY == 1:  # Before each chunk (a long job outlives a suspension).
                    _stop_if_suspended()
                try:
                    serializer.create(serializer.run_validation(row))
                except serializers.ValidationError as error:
                    if len(report["errors"]) < MAX_REPORTED_ERRORS:
                        report["errors"].append({"row": number, "errors": _details(error.detail)})
                    else:
                        omitted += 1
                else:
                    report["valid"] += 1
                if progress is not None and index % PROGRESS_EVERY == 0:
                    progress(index)
            if dry_run or report["valid"] != len(rows):
                transaction.set_rollback(True)
            else:
                report["created"] = report["valid"]
                audit.record(dm_actions.RECORDS_IMPORT.of(entity_key), target_type=f"data.{entity_key}", actor=user,
                             data={"created": report["created"]})
    except quotas.QuotaExceeded as error:
        raise TransferError(" ".join(error.messages), code=error.code, field="rows") from None
    if progress is not None:
        progress(len(rows))
    if omitted:
        report["errors_omitted"] = omitted
    return report


def _stop_if_suspended() -> None:
    if tenancy.is_suspended_now(connection.schema_name):
        raise TransferError(_("The workspace was suspended: the import stopped and nothing was imported."),
                            code="tenant_suspended", field=api_settings.NON_FIELD_ERRORS_KEY)


def run_import(entity_key: str, source: ImportSource, *, user=None, dry_run: bool = False) -> dict | ImportJob:
    """Import `source` now, or queue it as an `ImportJob` above API_IMPORT_SYNC_MAX_ROWS rows.

    :returns: the report of an import done now, or the queued job.
    :raises TransferError: for a source that cannot be read.
    """
    parsed = read_rows(record_serializer(entity_key), source)
    if len(parsed.rows) > settings.API_IMPORT_SYNC_MAX_ROWS:
        return start_import_job(entity_key, source, total=len(parsed.rows), user=user, dry_run=dry_run)
    report = import_rows(entity_key, parsed.rows, user=user, dry_run=dry_run)
    if parsed.ignored_columns:
        report["ignored_columns"] = parsed.ignored_columns
    return report


# --- uploads held between a dry run and the import --------------------------------------------

#: How long an upload waits, after its dry run, for the import to be confirmed.
HELD_UPLOAD_TIMEOUT = 3600


def _held_key(token: str) -> str:
    return f"dynamic_models:held_upload:{token}"  # The cache prefixes the tenant's schema.


def hold_upload(entity_key: str, source: ImportSource, *, user) -> str:
    """Keep `source` for a later import by `user` (after its dry run); return the token naming it."""
    token = secrets.token_urlsafe(24)
    cache.set(_held_key(token), {"entity": entity_key, "user": user.pk, "format": source.file_format,
                                 "payload": source.payload}, timeout=HELD_UPLOAD_TIMEOUT)
    return token


def held_upload(entity_key: str, token: str, *, user) -> ImportSource:
    """The upload `hold_upload` kept for `user` and this entity under `token`.

    :raises TransferError: no such upload (expired, another user's or entity's): upload it again.
    """
    held = cache.get(_held_key(token)) if token else None
    if not held or held["entity"] != entity_key or held["user"] != user.pk:
        raise TransferError(_("The uploaded file is no longer available; upload it again."), code="expired")
    return ImportSource(held["format"], held["payload"])


def release_upload(token: str) -> None:
    cache.delete(_held_key(token))


# --- import jobs ----------------------------------------------------------------------------

def _progress_key(job_id: int) -> str:
    return f"dynamic_models:import_job:{job_id}:processed"  # The cache prefixes the tenant's schema.


def start_import_job(entity_key: str, source: ImportSource, *, total: int, user=None,
                     dry_run: bool = False) -> ImportJob:
    """Store the upload as a queued job and run it on a Celery worker once committed."""
    from dynamic_models.tasks import import_records

    with transaction.atomic():
        job = ImportJob.objects.create(
            entity_key=entity_key, file_format=source.file_format, payload=source.payload, total=total,
            dry_run=dry_run, user=user if getattr(user, "is_authenticated", False) else None,
            language=translation.get_language() or "")
        transaction.on_commit(partial(import_records.delay, job.pk))
    return job


def with_live_progress(job: ImportJob) -> ImportJob:
    """Return `job` with the progress a running worker reported (its row is updated at the end)."""
    if job.status == ImportJob.Status.RUNNING:
        job.processed = max(job.processed, cache.get(_progress_key(job.pk)) or 0)
    return job


def run_import_job(job_id: int) -> None:
    """Run a queued import job (in the Celery worker), all or nothing.

    The job row is locked while it runs, so a message delivered twice (late acknowledgement,
    a broker's visibility timeout) never imports twice; a job whose worker died runs again.
    """
    job = _claim(job_id)
    if job is None:
        return
    with translation.override(job.language or settings.LANGUAGE_CODE):
        try:
            with transaction.atomic():
                if not ImportJob.objects.select_for_update(skip_locked=True).filter(
                        pk=job_id, status=ImportJob.Status.RUNNING).exists():
                    return  # Another worker runs it, or it has finished meanwhile.
                parsed = read_rows(record_serializer(job.entity_key),
                                   ImportSource(job.file_format, bytes(job.payload)))
                report = import_rows(job.entity_key, parsed.rows, user=job.user, dry_run=job.dry_run,
                                     progress=partial(_report_progress, job.pk))
                if report["created"]:
                    _finish(job, report)  # Committed with the records: a second delivery sees it done.
        except TransferError as error:
            _finish(_as_stored(job), message=error.message)
        except Exception:
            logger.exception("Import job %s of %s failed", job_id, job.entity_key)
            _finish(_as_stored(job), message=_("The import stopped on an unexpected error; nothing was imported."))
        else:
            if not report["created"]:
                _finish(job, report)  # Rolled back: a dry run, or rows with errors.


def _as_stored(job: ImportJob) -> ImportJob:
    """The job as its rolled-back transaction left it: an outcome set in memory did not happen."""
    job.refresh_from_db(fields=["status"])
    return job


def _claim(job_id: int) -> ImportJob | None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if job.status == ImportJob.Status.QUEUED:
            job.flow.start()
            job.save(update_fields=["status", "started_at"])
    return job


def _report_progress(job_id: int, processed: int) -> None:
    cache.set(_progress_key(job_id), processed, timeout=PROGRESS_TIMEOUT)


def _finish(job: ImportJob, report: dict | None = None, *, message: str = "") -> None:
    """Write the job's outcome; the upload is dropped (it is not needed any more)."""
    if report is None:
        job.flow.fail()
    else:
        job.processed, job.valid, job.created = report["total"], report["valid"], report["created"]
        job.errors = report["errors"]
        bad = report["total"] - report["valid"]
        if job.dry_run:
            job.flow.succeed()
            message = _("Dry run: %(valid)d of %(total)d rows are valid; nothing was written.") % report
        elif bad:
            job.flow.fail()
            message = _("%(count)d rows have errors; nothing was imported.") % {"count": bad}
        else:
            job.flow.succeed()
            message = _("Imported %(count)d records.") % {"count": report["created"]}
    job.message, job.finished_at, job.payload = message, timezone.now(), b""
    job.save(update_fields=["status", "total", "processed", "valid", "created", "errors", "message",
                            "finished_at", "payload"])
    cache.delete(_progress_key(job.pk))
