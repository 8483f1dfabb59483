"""Another OS process of the product, asked one line at a time: what another web worker sees."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings


class SecondProcess:
    """Runs `code` (a Python program reading lines on stdin, answering one line each) against the
    test database; `ask(line)` sends a line and returns the answer's words. A context manager: the
    program ends when its stdin closes."""

    def __init__(self, code: str, database_url: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=settings.BASE_DIR, env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"})

    def ask(self, line: str) -> list[str]:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().split()

    def __enter__(self) -> SecondProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
