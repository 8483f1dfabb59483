"""The CAPTCHA hook of public forms (FM-6).

`settings.FORMS_CAPTCHA` names a class (dotted path) with `html(request)`, the markup added to a
public form for visitors, and `verify(request)`, whether the POST passed it. The default asks
nothing: a tenant plugs in a provider (hCaptcha, Turnstile...) without touching the engine.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString


class NoCaptcha:
    """Asks nothing, passes everyone (public forms stay rate limited)."""

    def html(self, request) -> SafeString:
        return SafeString("")

    def verify(self, request) -> bool:
        return True


def get_captcha():
    return import_string(getattr(settings, "FORMS_CAPTCHA", "forms_engine.captcha.NoCaptcha"))()
