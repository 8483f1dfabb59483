"""API keys (AU-2): create, revoke, authenticate, record use, check scopes.

The admin, `manage.py lowcode apikey ...` and the DRF authentication class call these.
A full key is `<prefix>.<secret>`: the prefix finds the row, and only the SHA-256 of the
secret is stored. Secrets are 32 random bytes, so a plain hash (no salt, no stretching)
cannot be brute-forced, and checking it costs nothing per request.

Each process keeps the rows of the keys it saw (with their users) while the tenant's version of
them is unchanged: a change of a key or a user (a save, a delete, a revocation) replaces it on
commit, so it applies on every process's next request; a user changed by a bulk update, which
sends no signal, within KEY_ROW_MAX_AGE.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from lowcode.apikeys.models import ApiKey
from lowcode.versioned_cache import VersionedCache

#: `<resource>:read` or `<resource>:write`; resource = an entity key, `*` or `metadata`.
SCOPE_RE = re.compile(r"^(?P<resource>\*|[a-z][a-z0-9_]*):(?P<access>read|write)$")
#: The resource of the metadata API, which the `*` wildcard (every entity) does not cover.
METADATA = "metadata"
DEFAULT_SCOPES = ["*:read"]
PREFIX_BYTES = 4  # 8 hex characters
SECRET_BYTES = 32
#: `last_used_at` is written at most this often per key, not on every request.
TOUCH_INTERVAL = timedelta(minutes=1)
#: Seconds a process keeps a key's row at most (see the module's docstring).
KEY_ROW_MAX_AGE = 60
#: (schema, prefix) -> the key's row with its user; versioned per schema.
_key_rows = VersionedCache("api-keys", max_entries=4096, max_age=KEY_ROW_MAX_AGE)


class ApiKeyError(Exception):
    """A key was refused; the message says why and `code` names the reason."""

    code = "invalid_api_key"


class MalformedKey(ApiKeyError):
    code = "malformed_api_key"


class UnknownKey(ApiKeyError):
    code = "unknown_api_key"


class RevokedKey(ApiKeyError):
    code = "revoked_api_key"


class ExpiredKey(ApiKeyError):
    code = "expired_api_key"


class InactiveUser(ApiKeyError):
    code = "inactive_user"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_scopes(scopes: list[str]) -> list[str]:
    """Return the scopes without duplicates, or raise ValidationError naming each bad one."""
    if isinstance(scopes, str) or not isinstance(scopes, list | tuple):
        raise ValidationError(_("Scopes must be a list of strings."), code="invalid_scopes")
    bad = [scope for scope in scopes if not isinstance(scope, str) or not SCOPE_RE.match(scope)]
    if bad:
        raise ValidationError(
            _("Invalid scope %(scopes)s: use <resource>:read or <resource>:write, where the resource is an "
              "entity key, * (every entity) or metadata.") % {"scopes": ", ".join(map(repr, bad))},
            code="invalid_scope")
    if not scopes:
        raise ValidationError(_("Give the key at least one scope."), code="no_scopes")
    return list(dict.fromkeys(scopes))


def validate_expires_at(expires_at: datetime | None) -> None:
    """Raise ValidationError for an expiry that is not in the future."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError(_("The expiry date must be in the future."), code="expired")


def _new_prefix() -> str:
    # 32 bits rarely collide among one tenant's keys; when they do, draw again.
    while True:
        prefix = secrets.token_hex(PREFIX_BYTES)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            return prefix


def create_key(user, *, name: str, scopes: list[str], expires_at: datetime | None = None,
               created_by=None) -> tuple[ApiKey, str]:
    """Create a key for `user` in the current tenant and return it with its full text.

    The full text (`<prefix>.<secret>`) is returned only here: it cannot be recovered later.

    :raises ValidationError: for an invalid scope, an empty name or an expiry in the past.
    """
    scopes = validate_scopes(scopes)
    if not name or not name.strip():
        raise ValidationError(_("Give the key a name."), code="no_name")
    validate_expires_at(expires_at)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey.objects.create(name=name.strip(), prefix=_new_prefix(), hashed_key=_hash(secret), user=user,
                                scopes=scopes, expires_at=expires_at, created_by=created_by)
    return key, f"{key.prefix}.{secret}"


def revoke(key: ApiKey) -> None:
    """Revoke `key` for good; revoking it again keeps the first date."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=key.revoked_at)
        keys_changed()


def authenticate(raw: str) -> ApiKey:
    """Return the usable key whose full text is `raw`.

    :raises ApiKeyError: (a subclass saying why) for a malformed, unknown, revoked or expired
        key, or one whose user is inactive.
    """
    prefix, dot, secret = raw.strip().partition(".")
    if not dot or not prefix or not secret:
        raise MalformedKey(_("Malformed API key: expected <prefix>.<secret>."))
    key = _find(prefix)
    # Compare a hash even for an unknown prefix, so timing tells nothing about the secret.
    expected = key.hashed_key if key is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(secret)) or key is None:
        raise UnknownKey(_("Unknown API key."))
    if key.is_revoked:
        raise RevokedKey(_("This API key has been revoked."))
    if key.is_expired():
        raise ExpiredKey(_("This API key has expired."))
    if not key.user.is_active:
        raise InactiveUser(_("The user of this API key is inactive."))
    return key


def _find(prefix: str) -> ApiKey | None:
    """The key of `prefix` in the connection's tenant, with its user: copies of the rows the caller
    may change (a request's user gathers permission caches)."""
    schema_name = connection.schema_name
    version = _key_rows.version(schema_name)
    key = _key_rows.get((schema_name, prefix), version)
    if key is None:
        key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
        if key is None:
            return None
        _key_rows.put((schema_name, prefix), version, key)
    found = copy.copy(key)
    found.user = copy.copy(key.user)
    return found


def keys_changed(**kwargs) -> None:
    """Keys or users of the connection's tenant change in this transaction: every process reads
    them again (also a post_save and post_delete receiver of ApiKey and the user model)."""
    _key_rows.changed(connection.schema_name)


def touch(key: ApiKey) -> None:
    """Record that `key` was just used, writing at most once per TOUCH_INTERVAL."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < TOUCH_INTERVAL:
        return
    # The condition in the query keeps concurrent requests from all writing.
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)).update(last_used_at=now)
    key.last_used_at = now
    cached = _key_rows.get((connection.schema_name, key.prefix), _key_rows.version(connection.schema_name))
    if cached is not None:  # Its next requests need not write again.
        cached.last_used_at = now


def key_allows(api_key: ApiKey, resource: str, *, write: bool) -> bool:
    """Return True if the key's scopes allow reading (or, with `write`, writing) `resource`.

    `<resource>:write` implies read; `*` covers every entity but not `metadata`.
    """
    accesses = ("write",) if write else ("read", "write")
    resources = (resource,) if resource == METADATA else (resource, "*")
    return any(f"{name}:{access}" in api_key.scopes for name in resources for access in accesses)


def required_scope(resource: str, *, write: bool) -> str:
    """Return the scope that grants the access: what a refusal names."""
    return f"{resource}:{'write' if write else 'read'}"
