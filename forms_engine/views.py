"""Published forms at stable URLs (FM-6): thin shells over services and rendering."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View

from forms_engine import captcha, rendering, services


def _user(request):
    return request.user if request.user.is_authenticated else None


def _form(request, key: str) -> services.Form:
    """The published form `key` if the visitor may fill it: else 404 (no such form), login, or 403."""
    form = services.get_form(key)
    if not services.may_fill(form, _user(request), request):
        if not request.user.is_authenticated:
            raise _LoginRequired
        raise PermissionDenied(_("You may not fill this form."))
    return form


class _LoginRequired(Exception):
    pass


def form_list(request):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return render(request, "forms_engine/list.html", {"forms": services.fillable_forms(request.user, request)})


class FillView(View):
    """GET draws the form (a draft resumed with `draft_id`); POST submits it or saves a draft."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except _LoginRequired:
            return redirect_to_login(request.get_full_path())

    def get(self, request, key: str, draft_id: int | None = None):
        form = _form(request, key)
        draft = services.own_draft(form, draft_id, _user(request)) if draft_id else None
        return self._page(request, form, draft=draft)

    def post(self, request, key: str, draft_id: int | None = None):
        form = _form(request, key)
        user = _user(request)
        draft = services.own_draft(form, draft_id, user) if draft_id else None
        if form.is_public and user is None:
            if not services.public_rate_allows(request.META.get("REMOTE_ADDR", "")):
                return HttpResponse(_("Too many submissions from your address; try again in a minute."),
                                    status=429, content_type="text/plain; charset=utf-8")
            if not captcha.get_captcha().verify(request):
                return self._page(request, form, draft=draft, data=None, status=400,
                                  errors={"__all__": [_("Please prove you are not a robot.")]})
        save_draft = "save_draft" in request.POST and user is not None
        result = services.submit(form, request.POST, request.FILES, user=user, request=request, draft=save_draft,
                                 submission=draft)
        if not result.ok:
            return self._page(request, form, draft=draft, data=result.data, errors=result.errors,
                              status=403 if result.forbidden else 400)
        if save_draft:
            return redirect("forms_engine:draft", key=form.key, draft_id=result.submission.pk)
        return redirect(f"{reverse('forms_engine:done', kwargs={'key': form.key})}"
                        + (f"?submission={result.submission.pk}" if result.submission else ""))

    def _page(self, request, form, *, draft=None, data=None, errors=None, status=200):
        html = rendering.render(form, request=request, data=data, errors=errors, submission=draft)
        user = _user(request)
        drafts = services.FormSubmission.objects.filter(
            form_key=form.key, user=user, status=services.FormSubmission.Status.DRAFT) if user else []
        return render(request, "forms_engine/fill.html", {
            "form": form, "form_html": html, "media": rendering.media(), "draft": draft, "drafts": drafts,
            "captcha": captcha.get_captcha().html(request) if form.is_public and user is None else "",
            "can_save_draft": user is not None,
        }, status=status)


def done(request, key: str):
    form = services.get_form(key)
    return render(request, "forms_engine/done.html", {"form": form})


def relation_search(request, key: str, field: str):
    """[{"value", "label"}] of a picker's records matching `?q=`, under the viewer's permissions."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": _("Sign in first.")}, status=401)
    if key.startswith("entity-"):
        from dynamic_models import runtime

        form = services.entity_form(runtime.get_model(key.removeprefix("entity-")), user=request.user, request=request)
    else:
        form = _form(request, key)
    if field not in form.body["fields"]:
        return JsonResponse({field: [{"code": "unknown_field", "message": _("No such field.")}]}, status=404)
    return JsonResponse({"results": services.relation_choices(form, field, request.GET.get("q", ""),
                                                              user=request.user)})
