"""Who may use the metadata API: staff designers, with the model permissions each view asks for."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated

from lowcode.api.parsers import JSONParser
from lowcode.apikeys.permissions import ApiKeyScope
from metadata import services


class DesignerPermission(BasePermission):
    """Staff designers (every designer check passed; none added: nobody) with the model
    permissions the view asks for."""

    def has_permission(self, request, view):
        user = request.user
        if not services.may_design(user):
            self.message = _("The metadata API is for designers: staff users with designer access.")
            return False
        missing = [perm for perm in view.get_design_permissions(request) if not user.has_perm(perm)]
        if missing:
            self.message = _("You lack the permission %(permissions)s.") % {"permissions": ", ".join(missing)}
            return False
        return True


class MetaViewMixin:
    """What every metadata view shares: the API-key resource, permissions and parsers."""

    api_resource = "metadata"  # Read by ApiKeyScope: metadata:read for GET, metadata:write otherwise.
    permission_classes = [IsAuthenticated, ApiKeyScope, DesignerPermission]
    parser_classes = [JSONParser]
    read_permissions: tuple[str, ...] = ()
    write_permissions: tuple[str, ...] = ()
    #: Per action, instead of the read or write permissions.
    action_permissions: dict[str, tuple[str, ...]] = {}

    def get_design_permissions(self, request) -> tuple[str, ...]:
        if getattr(self, "action", None) in self.action_permissions:
            return self.action_permissions[self.action]
        return self.read_permissions if request.method in SAFE_METHODS else self.write_permissions
