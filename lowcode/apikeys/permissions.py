"""Scope checks for requests made with an API key (AU-2)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from lowcode.apikeys import services
from lowcode.apikeys.models import ApiKey


class ApiKeyScope(BasePermission):
    """Allow an API-key request only if a scope covers the view's resource and the method.

    The view names its resource with `get_api_resource()` or `api_resource` (an entity key
    or `metadata`). Session requests pass: their Django model permissions apply elsewhere.
    """

    code = "missing_scope"

    def has_permission(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return True
        resource = view.get_api_resource() if hasattr(view, "get_api_resource") else getattr(view, "api_resource", None)
        if not resource:
            # Failing closed: a view that forgot its resource must not accept every key.
            raise ImproperlyConfigured(f"{type(view).__name__} uses ApiKeyScope but declares no api_resource.")
        write = request.method not in SAFE_METHODS
        if services.key_allows(request.auth, resource, write=write):
            return True
        self.message = _("This API key lacks the scope %(scope)s.") % {
            "scope": services.required_scope(resource, write=write)}
        return False
