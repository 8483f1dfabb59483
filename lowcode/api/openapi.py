"""Post-processing of the OpenAPI schema: the error responses every API operation can give."""

from __future__ import annotations

ERROR_ITEM = {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
SCHEMAS = {
    "Error": {"type": "object", "required": ["detail", "code"], "additionalProperties": False,
              "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
              "description": "An error of the whole request."},
    "ValidationErrors": {"type": "object", "additionalProperties": {"type": "array", "items": ERROR_ITEM},
                         "description": "Errors per field; `non_field_errors` for the whole record."},
}
_REF = {name: {"$ref": f"#/components/schemas/{name}"} for name in SCHEMAS}
RESPONSES = {
    "400": ("Invalid request: the errors name each field and rule (by row index for bulk requests).",
            {"anyOf": [_REF["ValidationErrors"], {"type": "object", "additionalProperties": _REF["ValidationErrors"]},
                       _REF["Error"]]}),
    "401": ("Missing, unknown, revoked or expired credentials.", _REF["Error"]),
    "403": ("The user or API key may not do this.", _REF["Error"]),
    "404": ("Not found in this tenant.", _REF["Error"]),
    "405": ("Method not allowed.", _REF["Error"]),
    "406": ("Not acceptable.", _REF["Error"]),
    "409": ("Conflicts with the current state (for example records that depend on this one).", _REF["Error"]),
    "413": ("The request is too large.", _REF["Error"]),
    "415": ("Unsupported media type.", _REF["Error"]),
    "429": ("Too many requests: retry after the `Retry-After` seconds.", _REF["Error"]),
}


def add_error_responses(result, generator, request, public):
    """Document the errors of every operation, so a client (and schemathesis) knows all answers."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, (description, schema) in RESPONSES.items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": schema}}})
    return result
