"""zh-hans is complete: every string marked for translation in the project's Python and templates has a
translation in locale/zh_Hans, none of them fuzzy (issue 12)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
#: What makemessages reads: the project's own code and templates (not .venv, data or test results).
SOURCES = ("lowcode", "rbac", "audit", "metadata", "dynamic_models", "files", "forms_engine", "pages", "workflows",
           "plugins", "datafactory", "scripts", "templates", "manage.py")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgstrs: list[str] = field(default_factory=list)
    fuzzy: bool = False
    obsolete: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.msgstrs) and all(self.msgstrs) and not self.fuzzy


def read_catalogue(path: Path) -> list[Entry]:
    """The entries of a .po file (the header, msgid "", left out)."""
    entries, entry, target = [], Entry(), None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        obsolete = raw.startswith("#~")
        line = raw[2:].strip() if obsolete else raw.strip()
        if not line:
            if entry.msgid or entry.msgstrs:
                entries.append(entry)
            entry, target = Entry(), None
            continue
        if line.startswith("#,") and not obsolete:
            entry.fuzzy = "fuzzy" in line
            continue
        if line.startswith("#"):
            continue
        entry.obsolete = entry.obsolete or obsolete
        keyword, _space, rest = line.partition(" ")
        if keyword in ("msgid", "msgid_plural"):
            target = keyword
            setattr(entry, keyword, ast.literal_eval(rest))
        elif keyword.startswith("msgstr"):
            target = "msgstr"
            entry.msgstrs.append(ast.literal_eval(rest))
        elif line.startswith('"') and target == "msgstr":
            entry.msgstrs[-1] += ast.literal_eval(line)
        elif line.startswith('"') and target:
            setattr(entry, target, getattr(entry, target) + ast.literal_eval(line))
    return [entry for entry in entries if entry.msgid]


def translated_msgids() -> set[str]:
    """The English texts of the catalogue that zh-hans translates: a page in zh-hans showing one verbatim
    left it untranslated. Texts with placeholders and those translated as themselves (API, JSON) are left out."""
    return {entry.msgid for entry in read_catalogue(CATALOGUE)
            if entry.translated and not entry.obsolete and entry.msgstrs[0] != entry.msgid
            and not re.search(r"%|\{", entry.msgid)}


def test_every_project_string_has_a_chinese_translation(tmp_path):
    # makemessages on a copy of the sources and catalogue: what it would add or mark fuzzy is missing.
    base = Path(settings.BASE_DIR)
    for name in SOURCES:
        source = base / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(CATALOGUE, tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    subprocess.run([sys.executable, str(base / "manage.py"), "makemessages", "-l", "zh_Hans", "--no-location"],
                   cwd=tmp_path, check=True, capture_output=True)
    extracted = read_catalogue(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    missing = sorted(("fuzzy: " if entry.fuzzy else "untranslated: ") + entry.msgid
                     for entry in extracted if not entry.obsolete and not entry.translated)
    assert not missing, "Run `make messages` and translate:\n" + "\n".join(missing)


def test_the_catalogue_reader_sees_fuzzy_untranslated_and_plural_entries(tmp_path):
    catalogue = tmp_path / "django.po"
    catalogue.write_text('msgid ""\nmsgstr "Language: zh_Hans\\n"\n\n'
                         '#, fuzzy, python-format\nmsgid "Hello %(name)s"\nmsgstr "你好 %(name)s"\n\n'
                         'msgid ""\n"Two "\n"lines"\nmsgstr ""\n\n'
                         'msgid "%d record"\nmsgid_plural "%d records"\nmsgstr[0] "%d 条记录"\n\n'
                         '#~ msgid "Gone"\n#~ msgstr ""\n', encoding="utf-8")
    entries = {entry.msgid: entry for entry in read_catalogue(catalogue)}
    assert list(entries) == ["Hello %(name)s", "Two lines", "%d record", "Gone"]
    assert entries["Hello %(name)s"].fuzzy and not entries["Hello %(name)s"].translated
    assert not entries["Two lines"].translated
    assert entries["%d record"].translated and entries["%d record"].msgid_plural == "%d records"
    assert entries["Gone"].obsolete
