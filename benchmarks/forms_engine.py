"""Forms engine (issue 13): server time to render and to judge a 50-field form, and the designer page.

In tenant `bench_forms`, a standalone form of 50 data fields is published (`bench_fifty`: text,
text area, number, slider, select, radio, multiple select, checkbox, switch, date, date and time,
time; five steps, a group shown by a condition, show/require/enable conditions, a computed value
and three checks, plus paragraphs). Measured in process, as a superuser, after a warm-up:

- `rendering.render(form, request=...)`: the fields, steps and the config of form.js;
- judging a full 50-field submission: `services.submit` (widgets read the POST, conditions,
  JSON Schema, checks, the FormSubmission saved and audited; rolled back each time), and the
  validation alone (`conditions.evaluate` + `services.validate` on the cleaned data);
- the fill page GET /forms/bench_fifty/ and the admin designer page of the form (target < 1 s);
- the designer page in headless Chromium (the WSGI application in a thread, WhiteNoise serving
  the static files): from navigation to the load event, its scripts run and the designer ready
  (`data-ready` on #form-designer), on a first visit (fresh context) and on a reload. Skip with
  --no-browser.

Printed: medians and best times per operation, and the SQL queries of one call.

Run: .venv/bin/python benchmarks/forms_engine.py [--quick]
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import _setup
from _setup import ROOT, console, fmt_time

# This script is named like the app it measures: the project's root goes first, so that
# `forms_engine` is the app, whatever PYTHONPATH says.
sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

TENANT = "bench_forms"
FORM_KEY = "bench_fifty"
USERNAME = "bench_forms_admin"
N_FIELDS = 50
TARGET_DESIGNER_SECONDS = 1.0

CHOICES = ["a", "b", "c"]
#: widget -> (property schema, a valid posted value (a list: several values))
WIDGETS = {
    "text": ({"type": "string", "maxLength": 200}, "Some text"),
    "textarea": ({"type": "string", "maxLength": 2000}, "Several words\nover two lines"),
    "number": ({"type": "number", "minimum": 0}, "60"),
    "select": ({"type": "string", "enum": CHOICES}, "a"),
    "radio": ({"type": "string", "enum": CHOICES}, "b"),
    "checkbox": ({"type": "boolean"}, "true"),
    "date": ({"type": "string", "format": "date"}, "2026-01-15"),
    "multi_select": ({"type": "array", "items": {"type": "string", "enum": CHOICES}, "uniqueItems": True}, ["a", "c"]),
    "switch": ({"type": "boolean"}, "true"),
    "slider": ({"type": "number", "minimum": 0, "maximum": 100}, "40"),
    "time": ({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"}, "09:30"),
    "datetime": ({"type": "string", "format": "date-time"}, "2026-01-15T09:30"),
}


def form_body() -> dict:
    """The 50-field form: widgets in turn, conditions on some fields, five steps of ten."""
    kinds = list(WIDGETS)
    keys = [f"f{number:02d}" for number in range(1, N_FIELDS + 1)]
    widget_of = {key: kinds[index % len(kinds)] for index, key in enumerate(keys)}
    number, checkbox, choice, date = (next(key for key in keys if widget_of[key] == kind)
                                      for kind in ("number", "checkbox", "select", "date"))
    properties, fields = {}, {}
    for index, key in enumerate(keys, start=1):
        widget = widget_of[key]
        properties[key] = dict(WIDGETS[widget][0])
        spec = {"widget": widget, "label": f"Field {index} ({widget})", "help": f"Help of field {index}."}
        if widget in ("select", "radio", "multi_select"):
            spec["options"] = {"choices": [{"value": value, "label": value.upper()} for value in CHOICES]}
        if widget == "slider":
            spec["options"] = {"min": 0, "max": 100, "step": 5}
        if key not in (number, checkbox, choice, date):
            if index % 5 == 0:
                spec["show_when"] = f"{number} > 10"
            if index % 7 == 0:
                spec["require_when"] = f"{number} > 50"
            if index % 9 == 0:
                spec["enable_when"] = checkbox
        fields[key] = spec
    computed = next(key for key in reversed(keys) if widget_of[key] == "number"
                    and not {"show_when", "require_when", "enable_when"} & set(fields[key]))
    fields[computed]["value"] = f"{number} * 2"
    steps = []
    for step_number in range(5):
        chunk = keys[step_number * 10:(step_number + 1) * 10]
        fields[f"intro{step_number}"] = {"widget": "paragraph", "text": f"Part {step_number + 1} of the form."}
        items = [{"field": f"intro{step_number}", "width": 12}]
        if step_number == 1:
            items += [{"field": key, "width": 6} for key in chunk[:6]]
            items.append({"group": "extra", "label": "Extra", "show_when": f"{choice} != 'c'",
                          "items": [{"field": key, "width": 6} for key in chunk[6:]]})
        else:
            items += [{"field": key, "width": 4 if index % 3 else 12} for index, key in enumerate(chunk)]
        steps.append({"key": f"part{step_number + 1}", "label": f"Part {step_number + 1}", "items": items})
    return {
        "label": "Fifty fields",
        "schema": {"type": "object", "properties": properties, "required": keys[:10]},
        "fields": fields,
        "layout": {"steps": steps},
        "checks": [
            {"expression": f"{number} < 1000", "message": "Too large.", "field": number},
            {"expression": f"is_null({date}) or {date} <= today()", "message": "Cannot be in the future.",
             "field": date},
            {"expression": f"{checkbox} or {number} < 500", "message": "Tick the box for large values.",
             "field": checkbox},
        ],
    }


def submission(body: dict):
    """A valid POST of every field (computed ones left out, as the browser does)."""
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for key, spec in body["fields"].items():
        if spec["widget"] == "paragraph" or spec.get("value"):
            continue
        value = WIDGETS[spec["widget"]][1]
        data.setlist(key, value if isinstance(value, list) else [value])
    return data


def publish(body: dict) -> None:
    from metadata import services as metadata

    published = metadata.get_published("form", FORM_KEY)
    if published is None or published.body != body:
        metadata.save_and_publish("form", FORM_KEY, body)


def superuser():
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    return user_model.objects.filter(username=USERNAME).first() or user_model.objects.create_superuser(
        USERNAME, f"{USERNAME}@example.com", password=None)


def measure(operations: dict, *, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each operation, interleaved round by round (the machine's noise is shared)."""
    for func in operations.values():
        for _ in range(warmup):
            func()
    times = {label: [] for label in operations}
    with _setup.progress() as bar:
        task = bar.add_task("Measuring, operations interleaved", total=rounds * len(operations))
        for _round in range(rounds):
            for label, func in operations.items():
                gc.collect()
                started = time.perf_counter()
                func()
                times[label].append(time.perf_counter() - started)
                bar.advance(task)
    return times


def browser_loads(url: str, session_cookie: str, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation to the load event of `url` in Chromium, the designer being ready:
    in a fresh browser context (cold cache), then reloaded in it (cached scripts and styles)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    host = url.split("/")[2].split(":")[0]
    cold, warm = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            for _ in range(rounds + 1):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_cookies([{"name": "sessionid", "value": session_cookie, "domain": host, "path": "/"}])
                page = context.new_page()
                problems = []
                page.on("pageerror", lambda error, problems=problems: problems.append(str(error)))
                for times in (cold, warm):
                    page.goto(url, wait_until="load")
                    try:
                        page.wait_for_selector('#form-designer[data-ready="1"]', state="attached", timeout=10_000)
                    except PlaywrightTimeout:
                        raise RuntimeError(f"The designer did not start: {problems or 'no script error'}") from None
                    times.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000)
                context.close()
        finally:
            browser.close()
    return cold[1:], warm[1:]  # The first round also warms the server up.


def wsgi_server():
    """The project's WSGI application on a free port, served by four threads (WhiteNoise serves the
    static files, as in production)."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    workers = ThreadPoolExecutor(max_workers=4)  # As a few worker threads of an application server.

    class ThreadedServer(WSGIServer):
        def process_request(self, request, client_address):
            workers.submit(super().process_request, request, client_address)

    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=ThreadedServer,
                         handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def queries_of(func) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        func()
    return len(captured)


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv, extra=lambda parser: parser.add_argument(
        "--no-browser", action="store_true", help="skip the designer page's load in Chromium"))
    rounds, warmup = (10, 3) if args.quick else (50, 10)
    _setup.header("Forms engine: render, judge, designer page (50 fields)", args.quick)
    warnings.filterwarnings("ignore", message="No directory at")

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.db import transaction
        from django.templatetags.static import static
        from django.test import Client, RequestFactory
        from django.utils.datastructures import MultiValueDict

        from forms_engine import conditions, rendering, services

        (tenant,) = _setup.ensure_tenants([TENANT])
        with _setup.in_tenant(tenant):
            body = form_body()
            publish(body)
            _setup.empty_audit_trail()
            admin = superuser()
            form = services.get_form(FORM_KEY)
            host = tenant.get_primary_domain().domain
            factory = RequestFactory(HTTP_HOST=host)
            posted = submission(body)

            def request():
                made = factory.get(f"/forms/{FORM_KEY}/")
                made.user, made.tenant = admin, tenant
                return made

            def render():
                return rendering.render(form, request=request())

            def submit():
                with transaction.atomic():
                    result = services.submit(form, posted, MultiValueDict(), user=admin, request=request())
                    if not result.ok:
                        raise RuntimeError(f"The benchmark's submission was refused: {result.errors}")
                    transaction.set_rollback(True)
                return result

            cleaned = submit().data

            def validate():
                state = conditions.evaluate(form.body, cleaned, user=admin)
                errors = services.validate(form, cleaned, state, user=admin, editable=set(cleaned))
                if errors:
                    raise RuntimeError(f"The benchmark's data is invalid: {errors}")

            client = Client(HTTP_HOST=host)
            client.force_login(admin)

            def get(path: str):
                def call():
                    response = client.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
                    if response.streaming:
                        b"".join(response.streaming_content)
                    response.close()
                return call

            measured = {
                "render (rendering.render)": render,
                "judge and save a submission (services.submit, rolled back)": submit,
                "validate only (conditions.evaluate + services.validate)": validate,
                "fill page GET /forms/bench_fifty/": get(f"/forms/{FORM_KEY}/"),
                "designer page GET (admin)": get(f"/admin/forms_engine/formdefinition/design/{FORM_KEY}/"),
                # The designer page asks for 27 such files (scripts, styles, ES modules).
                "a static file GET (form.js, WhiteNoise)": get(static("forms_engine/form.js")),
            }
            times = measure(measured, rounds=rounds, warmup=warmup)
            queries = {label: queries_of(func) for label, func in measured.items()}
            rows = []
            for label, values in times.items():
                target = ""
                if label.startswith("designer"):
                    target = f"{_setup.verdict(_setup.median(values) < TARGET_DESIGNER_SECONDS)} < 1 s"
                rows.append([label, fmt_time(_setup.median(values)), fmt_time(min(values)), str(queries[label]), target])
            _setup.table(f"Server time, form of {N_FIELDS} fields, median of {rounds}",
                         ["operation", "median", "best", "queries", "target"], rows)
            console.print("[dim]In process (Django test Client for pages: middleware, views, templates; no "
                          "network), as a superuser, after a warm-up. Queries: one call.[/dim]")
            designer = _setup.median(times["designer page GET (admin)"])
            if not args.no_browser:
                server = wsgi_server()
                try:
                    url = f"http://{host}:{server.server_port}/admin/forms_engine/formdefinition/design/{FORM_KEY}/"
                    cold, warm = browser_loads(url, client.cookies["sessionid"].value, 5 if args.quick else 20)
                finally:
                    server.shutdown()
                designer = max(designer, _setup.median(cold))
                _setup.table("Designer page in Chromium: navigation to the load event, the designer ready",
                             ["cache", "median", "best", "worst", "target"],
                             [[name, fmt_time(_setup.median(loads)), fmt_time(min(loads)), fmt_time(max(loads)),
                               f"{_setup.verdict(_setup.median(loads) < TARGET_DESIGNER_SECONDS)} < 1 s"]
                              for name, loads in (("cold (first visit)", cold), ("warm (reload)", warm))])
            return 0 if designer < TARGET_DESIGNER_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
