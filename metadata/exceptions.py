class MetadataError(Exception):
    """A metadata operation was refused; the message says why."""


class DefinitionValidationError(MetadataError):
    """A body broke its kind's JSON Schema or rules: `errors` is a list of {"path", "code", "message"}."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['path'] or '(body)'}: {e['message']}" for e in errors))


class DefinitionNotFound(MetadataError):
    pass


class PublishConflict(MetadataError):
    """Another publish of the same tenant is running, or the draft is based on an older version."""
