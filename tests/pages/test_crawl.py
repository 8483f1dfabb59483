"""A crawl of every end-user page reachable from the home page, as alice, mia and frank, in English
and Simplified Chinese: no server error, no Python repr (issue 14's acceptance), nothing of our
catalogue left in English on a Chinese page."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.lowcode.test_crawl import crawl_in_both_languages, parse

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
    problems, pages = crawl_in_both_languages({name: people[name] for name in ("alice", "mia", "frank")}, crawl)
    assert pages > 30
    assert not problems, "\n".join(problems)
