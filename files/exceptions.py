"""Why an upload was refused (FL-4)."""

from django.core.exceptions import ValidationError


class FileRefused(ValidationError):
    """An upload or a file that breaks a limit; nothing was stored. `code` says which rule:
    invalid_file_name, empty_file, file_too_large, file_type_not_allowed, file_type_mismatch,
    unsafe_file, image_too_large, quota_exceeded (the storage quota, see lowcode.tenancy.quotas)."""

    def __init__(self, message, code: str, params=None):
        super().__init__(message, code=code, params=params)
