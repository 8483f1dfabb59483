"""Create and edit pages of an entity's records: the forms engine's form for the entity (the
builder's designed form when one serves the entity's pages, else one generated for the viewer)
inside the page's own <form>, submitted through forms_engine.services.submit (records.save)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from forms_engine import rendering
from forms_engine import services as forms
from pages import child_rows, queries


def _form_page(request, model, *, record=None):
    form = forms.entity_form(model, user=request.user, request=request)
    data, errors, status = None, None, 200
    if request.method == "POST":
        result = forms.submit(form, request.POST, request.FILES, user=request.user, request=request, record=record)
        if result.ok:
            messages.success(request, _("Saved."))
            return redirect("pages:detail", entity=model.lowcode_entity["key"], pk=result.record.pk)
        data, errors, status = result.data, result.errors, 403 if result.forbidden else 400
    return render(request, "pages/form.html", {
        "model": model, "entity_key": model.lowcode_entity["key"], "record": record,
        "title": _("Edit %(name)s") % {"name": str(record)} if record is not None else
        _("New %(name)s") % {"name": model._meta.verbose_name},
        "title_plural": str(model._meta.verbose_name_plural).capitalize(),
        "form_html": rendering.render(form, request=request, record=record, data=data, errors=errors),
        "form_media": rendering.media(), "errors": errors,
        "child_rows": child_rows.sections(request, record) if record is not None else [],
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
