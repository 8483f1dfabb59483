"""The theme's logo as an owner of files: every signed-in person of the tenant may read it."""

from django.utils.translation import gettext_lazy as _

from files.registries import FileOwner
from pages import services


class ThemeLogo(FileOwner):
    type = services.LOGO_OWNER
    verbose_name = _("theme logo")

    def api_resource(self, owner_key):
        return "files"

    def may_read(self, user, *, owner_key, object_id, field, request=None):
        return bool(user and user.is_authenticated)
