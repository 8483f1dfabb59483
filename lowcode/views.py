"""The start page and the error pages (handler403/404/500 of every site's URLconf).

Error pages are the site's own pages in the tenant's look, with the way back; under /api/ the
answer stays JSON in the API's format ({"detail": ..., "code": ...}).
"""

from __future__ import annotations

import logging

from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

logger = logging.getLogger(__name__)


class HomeView(TemplateView):
    """A tenant's start page: who is signed in, and where to go."""

    template_name = "home.html"


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _error_page(request, template: str, status: int, **context):
    in_admin = request.path.startswith("/admin/")
    referer = request.headers.get("Referer", "")
    back = referer if url_has_allowed_host_and_scheme(referer, {request.get_host()}) and referer != \
        request.build_absolute_uri() else ""
    return render(request, template, {"status": status, "home_url": "/admin/" if in_admin else "/",
                                      "in_admin": in_admin, "back_url": back, **context}, status=status)


def permission_denied(request, exception=None):
    """403: what is missing, when the refusal says it (a PermissionDenied with a message)."""
    reason = str(exception) if exception is not None and exception.args else ""
    if _is_api(request):
        return JsonResponse({"detail": reason or _("You do not have permission to perform this action."),
                             "code": "permission_denied"}, status=403)
    return _error_page(request, "403.html", 403, reason=reason)


def csrf_failure(request, reason=""):
    """A form sent without its CSRF token (an old page, cookies off): what to do, on the 403 page."""
    message = _("The form could not be checked: it may be from a page opened long ago, or cookies are off. "
                "Reload the page, then send it again.")
    if _is_api(request):
        return JsonResponse({"detail": message, "code": "csrf_failed"}, status=403)
    return _error_page(request, "403.html", 403, reason=message)


def page_not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)
    return _error_page(request, "404.html", 404, path=request.path)


def server_error(request):
    if _is_api(request):
        return JsonResponse({"detail": _("A server error occurred."), "code": "server_error"}, status=500)
    try:
        return _error_page(request, "500.html", 500)
    except Exception:  # The page itself failed (its database is down, say): say it plainly.
        logger.exception("The 500 page could not be rendered.")
        return HttpResponseServerError(_("A server error occurred. Please try again later."),
                                       content_type="text/plain; charset=utf-8")


#: handler403, handler404 and handler500 of every URLconf: the platform's, the tenants' (lowcode.site).
ERROR_HANDLERS = (permission_denied, page_not_found, server_error)
