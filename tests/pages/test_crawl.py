"""A crawl of every end-user page reachable from the home page, as alice, mia and frank, in English
and Simplified Chinese: no server error, no Python repr (issue 14's acceptance), nothing of our
catalogue left in English on a Chinese page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.text import capfirst

from tests.lowcode.test_crawl import REPRS, parse, tenant_data, untranslated
from tests.lowcode.test_translations import translated_msgids
from tests.scenario import client_for

#: Pages of the end-user site: the home page, records, forms, the inbox and notifications (files
#: open elsewhere).
SITE_PAGE = re.compile(r"^/(?:(?:data|forms|inbox)/.*)?$")
#: One record per entity is enough to crawl its detail and edit pages.
RECORD_PAGE = re.compile(r"^/data/([a-z_0-9]+)/\d+/(edit/)?$")


def crawl(client) -> dict[str, tuple[int, str]]:
    seen, queue, records = {}, ["/"], set()
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
            parts = urlsplit(href)
            target = parts.path + (f"?{parts.query}" if parts.query and "page=" not in parts.query else "")
            if parts.netloc or not SITE_PAGE.match(parts.path) or target in seen or target in queue:
                continue
            record = RECORD_PAGE.match(parts.path)
            if record:
                kind = (record.group(1), record.group(2))
                if kind in records:
                    continue
                records.add(kind)
            queue.append(target)
    return seen


def test_every_end_user_page_for_alice_mia_and_frank(people):
    msgids = {text for msgid in translated_msgids() for text in (msgid, capfirst(msgid))} - tenant_data()
    problems, pages = [], 0
    for username in ("alice", "mia", "frank"):
        for language in ("en", "zh-hans"):
            client = client_for(people[username], key=False)
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
            for path, (status, html) in crawl(client).items():
                pages += 1
                where = f"{username} {language} {path}"
                if status >= 500:
                    problems.append(f"{where}: {status}")
                problems += [f"{where}: {repr_}" for repr_ in REPRS if repr_ in html]
                if language != "en":
                    problems += [f"{where}: untranslated {text!r}" for text in sorted(untranslated(html, msgids))]
    assert pages > 30
    assert not problems, "\n".join(problems)
