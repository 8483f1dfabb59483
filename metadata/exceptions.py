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


class InvalidBundle(MetadataError):
    """A bundle is not a lowcode bundle: `errors` is a list of {"path", "message"}; nothing was read."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['path'] or '(bundle)'}: {e['message']}" for e in errors))


class DependencyError(MetadataError):
    """Definitions cannot be ordered dependencies first: a cycle, or a dependency that is not published."""


class BundleError(MetadataError):
    """An import was refused and rolled back: `report` holds one row per definition."""

    def __init__(self, report: list[dict], message: str):
        self.report = report
        super().__init__(message)
