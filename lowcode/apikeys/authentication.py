"""`Authorization: Api-Key <prefix>.<secret>` for the REST API (AU-2)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from lowcode.apikeys import services

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticate as the key's user; `request.auth` is the ApiKey, whose scopes apply."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # Not ours: the next class (the session) may authenticate the request.
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Malformed API key header: expected Authorization: Api-Key <prefix>.<secret>."))
        try:
            key = services.authenticate(parts[1].decode("latin-1"))
        except services.ApiKeyError as error:
            raise exceptions.AuthenticationFailed(str(error), code=error.code) from None
        services.touch(key)
        # Log lines and audit events read the Django request, which DRF's request wraps.
        request._request.api_key = key
        return key.user, key

    def authenticate_header(self, request):
        return KEYWORD


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "lowcode.apikeys.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": _("An API key of this tenant, sent as `Authorization: Api-Key <prefix>.<secret>`."),
        }
