from django.core.management.base import BaseCommand

from lowcode.cli import subcommand_registry


class Command(BaseCommand):
    help = "Lowcode operator commands: run `manage.py lowcode <subcommand> --help`."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="subcommand")
        for subcommand in sorted(subcommand_registry.get_all(), key=lambda s: s.type):
            subcommand.add_arguments(subparsers.add_parser(subcommand.type, help=subcommand.help))

    def handle(self, *args, subcommand, **options):
        return subcommand_registry.get(subcommand).handle(self, **options)
