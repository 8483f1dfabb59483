"""Handlers timed by benchmarks/sandbox.py (this folder is the sandbox's sys.path entry)."""


def echo(data, context):
    return data


def ten_calls(data, context):
    return [context.records.get("expense", number) for number in range(10)]
