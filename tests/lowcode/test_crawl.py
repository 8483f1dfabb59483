"""A crawl of every admin page reachable from the admin index, as the scenario's admin, alice and
frank, in English and in Simplified Chinese: no server error, no Python repr, and in zh-hans no
English text of our catalogue left untranslated (issue 12's acceptance)."""

from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.text import capfirst

from dynamic_models import runtime
from metadata.models import Definition
from tests.lowcode.test_translations import translated_msgids
from tests.scenario import client_for

#: The kinds of admin page crawled: index, app index, changelist, add, change and history pages.
PAGE = re.compile(r"^/admin/(?:[a-z_]+/(?:[a-z_]+/(?:add/|[^/]+/change/|[^/]+/history/)?)?)?$")
CHANGE_OR_HISTORY = re.compile(r"^/admin/([a-z_]+/[a-z_]+)/[^/]+/(change|history)/$")
REPRS = ("object at 0x", "<django.", "&lt;django.")


class Page(HTMLParser):
    """The links and the text a reader sees in the page's language (text nodes, button values, titles,
    placeholders); text marked as another language (`lang`, as the language switch's "English") is left out."""

    SEEN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
    HIDDEN = {"script", "style", "template"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.links, self.texts, self._open = [], [], []  # Open elements: (tag, hidden or in another language).

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "html":
            self.language = attrs.get("lang", "")
            return
        other = tag in self.HIDDEN or attrs.get("lang", self.language) != self.language
        if not (other or self._skipping):
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.texts.append(attrs["value"])
            self.texts += [value for name, value in attrs.items() if name in self.SEEN_ATTRIBUTES and value]
        if tag not in self.VOID:
            self._open.append((tag, other))

    def handle_endtag(self, tag):
        for index in range(len(self._open) - 1, -1, -1):  # Tolerant of unclosed elements (<p>, <li>).
            if self._open[index][0] == tag:
                del self._open[index:]
                break

    @property
    def _skipping(self) -> bool:
        return any(other for _tag, other in self._open)

    def handle_data(self, data):
        if not self._skipping and data.strip():
            self.texts.append(data)

    language = ""


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def crawl(client) -> dict[str, tuple[int, str]]:
    """{path: (status, html)} of the admin pages reachable from the index (one change and history page per model)."""
    seen, queue, per_model = {}, ["/admin/"], defaultdict(set)
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        response = client.get(path)
        html = response.content.decode() if response.get("Content-Type", "").startswith("text/html") else ""
        seen[path] = (response.status_code, html)
        if response.status_code != 200:
            continue
        for href in parse(html).links:
            target = urlsplit(href).path
            if not PAGE.match(target) or target in seen or target in queue:
                continue
            detail = CHANGE_OR_HISTORY.match(target)
            if detail:
                model, kind = detail.groups()
                if kind in per_model[model]:
                    continue
                per_model[model].add(kind)
            queue.append(target)
    return seen


def untranslated(html: str, msgids: set[str]) -> set[str]:
    texts = {" ".join(text.split()) for text in parse(html).texts}
    return {text for text in texts if text in msgids}


def strings(value) -> set[str]:
    """The texts inside a JSON value (a definition's labels, help, steps...)."""
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return {text for item in items for text in strings(item)}


def tenant_data() -> set[str]:
    """Texts that are the tenant's data, whatever the language: people's names, the labels and keys its
    builders gave entities, fields and choices (the demo's are English), definitions' kinds, notes and
    texts (a form's labels and steps)."""
    texts = set(get_user_model().objects.values_list("username", flat=True))
    for model in runtime.current().apps.get_models():
        texts |= {str(model._meta.verbose_name), str(model._meta.verbose_name_plural), model._meta.model_name}
        for field in model._meta.get_fields():
            texts |= {str(getattr(field, "verbose_name", "")), field.name}
            texts |= {str(label) for _value, label in getattr(field, "choices", None) or ()}
    for kind, key, note, body in Definition.objects.values_list("kind", "key", "change_note", "body"):
        texts |= {kind, key, note, *strings(body)}
    return {text for value in texts for text in (value, capfirst(value))}


@pytest.fixture
def crawlers(people, make_user, acme):
    admin = make_user(acme, "admin", is_staff=True, is_superuser=True)
    return {"admin": admin, "alice": people["alice"], "frank": people["frank"]}


def crawl_in_both_languages(users: dict, crawl) -> tuple[list[str], int]:
    """Crawl as each of `users` ({name: user}) in English and Chinese: (problems found, pages seen).
    A problem is a server error, a Python repr, or on a Chinese page a text of our catalogue in English."""
    msgids = {text for msgid in translated_msgids() for text in (msgid, capfirst(msgid))} - tenant_data()
    problems, pages = [], 0
    for username, user in users.items():
        for language in ("en", "zh-hans"):
            client = client_for(user, key=False)
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
            for path, (status, html) in crawl(client).items():
                pages += 1
                where = f"{username} {language} {path}"
                if status >= 500:
                    problems.append(f"{where}: {status}")
                problems += [f"{where}: {repr_}" for repr_ in REPRS if repr_ in html]
                if language != "en":
                    problems += [f"{where}: untranslated {text!r}" for text in sorted(untranslated(html, msgids))]
    return problems, pages


def test_every_admin_page_for_admin_alice_and_frank_in_english_and_chinese(crawlers):
    problems, pages = crawl_in_both_languages(crawlers, crawl)
    assert pages > 100
    assert not problems, "\n".join(problems)
