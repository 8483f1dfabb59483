"""The modules' pages at /dmm/ (PL-4): thin shells over services and the forms engine's renderer."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View

from datafactory import services
from forms_engine import rendering


@login_required
def module_list(request):
    return render(request, "datafactory/list.html", {"modules": services.modules_for(request.user)})


@method_decorator(login_required, name="dispatch")
class ModuleView(View):
    """GET draws the module's form; POST runs it and shows the result above the form."""

    def get(self, request, space: str, action: str):
        module = services.get_module(space, action, request.user)
        return self._page(request, module)

    def post(self, request, space: str, action: str):
        module = services.get_module(space, action, request.user)
        result = services.run(module, request.POST, request.FILES, user=request.user, request=request)
        if not result.ok:
            return self._page(request, module, data=result.data, errors=result.errors, status=400)
        return self._page(request, module, data=result.data, run=result.run)

    def _page(self, request, module, *, data=None, errors=None, run=None, status=200):
        form = services.form(module)
        return render(request, "datafactory/module.html", {
            "module": module, "form_html": rendering.render(form, request=request, data=data, errors=errors),
            "media": rendering.media(), "run": run, "runs": services.recent_runs(module, request.user),
            "output": json.dumps(run.output, indent=2, ensure_ascii=False) if run and run.output is not None else "",
        }, status=status)
