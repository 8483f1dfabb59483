"""Field values encrypted at rest (DM-1 option `encrypted`).

AES-SIV is deterministic: the same value always gives the same ciphertext, so exact-match
lookups still work (the lookup value is encrypted the same way), and nothing else does —
as the spec asks ("searchable only by exact match").
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings
from django.db import models

PREFIX = "enc1:"


@cache
def _cipher(key_material: str) -> AESSIV:
    # AES-SIV-256 takes a 512-bit key; derive it from the configured secret.
    return AESSIV(hashlib.sha512(key_material.encode()).digest())


def _current_cipher() -> AESSIV:
    return _cipher(settings.FIELD_ENCRYPTION_KEY or settings.SECRET_KEY)


def encrypt(value: str) -> str:
    token = _current_cipher().encrypt(value.encode(), [b"lowcode.field"])
    return PREFIX + base64.urlsafe_b64encode(token).decode()


def decrypt(value: str) -> str:
    if not value.startswith(PREFIX):
        return value  # Written before the field was encrypted.
    try:
        return _current_cipher().decrypt(base64.urlsafe_b64decode(value[len(PREFIX):]), [b"lowcode.field"]).decode()
    except InvalidTag:
        raise ValueError("An encrypted value cannot be read with the current FIELD_ENCRYPTION_KEY.") from None


class EncryptedTextField(models.TextField):
    """Text stored encrypted; exact lookups only."""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value not in (None, "") else value

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_lookup(self, lookup_name):
        if lookup_name not in ("exact", "in", "isnull"):
            return None  # Ciphertext cannot be compared by range or substring.
        return super().get_lookup(lookup_name)
