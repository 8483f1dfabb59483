"""Handlers that try what a sandboxed handler must not do (tests/lowcode/test_sandbox.py).

This folder is not a package: the sandbox gets it as the handler's path, as a plugin's folder.
"""

import os


def double(data, context):
    print("doubling", data["n"])
    context.log("asked the API")
    return {"double": data["n"] * 2, "created": context.records.create("expense", {"amount": "1.00"})}


def refused_call(data, context):
    return context.records.create("expense", {"amount": "-1"})


def unlisted_call(data, context):
    return context.call("users.delete_all")


def loop(data, context):
    while True:
        pass


def sleep(data, context):
    import time

    time.sleep(600)


def allocate_2_gb(data, context):
    return len(bytearray(2 * 1024 ** 3))


def fork(data, context):
    return os.fork()


def run_a_program(data, context):
    import subprocess

    return subprocess.run(["id"], check=False).returncode


def read_environment(data, context):
    return os.environ["DATABASE_URL"]


def read_passwd(data, context):
    with open("/etc/passwd") as passwd:
        return passwd.read()


def open_socket(data, context):
    import socket

    return socket.create_connection(("127.0.0.1", 5432)).fileno()


def write_1_gb(data, context):
    with open("big.bin", "wb") as big:
        for _megabyte in range(1024):
            big.write(b"x" * 1024 * 1024)


def write_outside(data, context):
    with open("/tmp/lowcode-sandbox-escape.txt", "w") as escape:  # noqa: S108 - the escape it must not make
        escape.write("out")


def import_settings(data, context):
    import lowcode.settings  # noqa: F401

    return "imported"


def load_a_library(data, context):
    import ctypes

    return ctypes.CDLL(None).getpid()


def segfault(data, context):
    import faulthandler

    faulthandler._sigsegv()


def not_json(data, context):
    return object()
