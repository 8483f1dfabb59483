"""Create and edit pages of an entity's records: the forms engine's form for the entity (the
builder's designed form when one serves the entity's pages, else one generated for the viewer)
inside the page's own <form>, submitted through forms_engine.services.submit (records.save)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from pages import queries


def _form_page(request, model, *, record=None):
    from forms_engine import rendering
    from forms_engine import services as forms

    form = forms.entity_form(model, user=request.user, request=request)
    errors, status = None, 200
    if request.method == "POST":
        try:
            result = forms.submit(form, request.POST, request.FILES, user=request.user, request=request, record=record)
        except PermissionDenied as error:
            messages.error(request, str(error) or _("You may not do this to this record."))
            result, status = None, 403
        if result is not None and result.ok:
            messages.success(request, _("Saved."))
            return redirect("pages:detail", entity=model.lowcode_entity["key"], pk=result.record.pk)
        if result is not None:
            errors, status = result.errors, 400
    label = str(model._meta.verbose_name)
    return render(request, "pages/form.html", {
        "model": model, "entity_key": model.lowcode_entity["key"], "record": record,
        "title": _("Edit %(name)s") % {"name": str(record)} if record is not None else
        _("New %(name)s") % {"name": label},
        "title_plural": str(model._meta.verbose_name_plural).capitalize(),
        "form_html": rendering.render(form, request=request, record=record,
                                      data=request.POST if errors else None, errors=errors),
        "form_media": rendering.media(), "errors": errors,
    }, status=status)


@login_required
def create(request, entity):
    model = queries.entity_model(entity)
    queries.require(request, model, "add")
    return _form_page(request, model)


@login_required
def edit(request, entity, pk):
    model = queries.entity_model(entity)
    record = queries.record_or_404(request, model, pk)
    queries.require(request, model, "change", record)
    return _form_page(request, model, record=record)
