"""Subcommands of `manage.py lowcode` (PF-5), one registry for every app.

Each app registers its subcommands from `AppConfig.ready()`; the `lowcode` management
command builds one argument parser from them. Subcommands are thin shells over services.
"""

from __future__ import annotations

from argparse import ArgumentParser

from django.core.management.base import BaseCommand

from lowcode.registry import Instance, Registry


class Subcommand(Instance):
    help: str = ""

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Add this subcommand's options."""

    def handle(self, command: BaseCommand, **options) -> None:
        raise NotImplementedError


subcommand_registry: Registry[Subcommand] = Registry("lowcode subcommand")
