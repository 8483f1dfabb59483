"""The sandboxed process's side of lowcode.sandbox (PL-5). Run as `python -I <this file>`.

Isolated mode keeps the project off sys.path. The parent set the resource limits (CPU time,
address space, file size, open files) before this file runs and gave it an environment with no
secrets. Here the process locks itself down before any untrusted code is imported:
- seccomp (where libseccomp loads): no new processes, no program execution, no sockets, no
  ptrace, enforced by the kernel;
- an audit hook (PEP 578), which cannot be removed: files open for reading only under the
  interpreter's own directories and the code's paths, for writing only in the run's scratch
  directory; no sockets, processes, ctypes or imports of the project's packages;
- `os.environ` refuses reads.
It then reads one request line from stdin, calls `module:function(payload, context)` and writes
JSON lines to the protocol pipe: calls of the allow-listed API, answered by the parent, then the
result. Whatever the handler prints is captured as its log.
"""

import io
import json
import os
import signal
import sys
import sysconfig
import traceback

FORBIDDEN_EVENTS = ("socket.", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system",
                    "subprocess.Popen", "ctypes.", "os.putenv", "os.unsetenv", "os.kill", "os.killpg",
                    "sys.addaudithook", "os.chmod", "os.chown", "os.symlink", "os.link", "os.chroot")
WRITE_EVENTS = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.utime", "shutil.rmtree")


class SandboxViolation(PermissionError):
    """The handler tried something the sandbox forbids."""


class CallFailed(Exception):
    """The parent refused or failed an API call; its message says why."""


class ForbiddenEnviron(dict):
    """os.environ in the sandbox: empty, and reading a variable is refused."""

    def __getitem__(self, key):
        raise SandboxViolation(f"The sandbox has no environment (read of {key!r} refused).")

    def get(self, key, default=None):
        raise SandboxViolation(f"The sandbox has no environment (read of {key!r} refused).")


def _under(path: str, roots) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def install_seccomp() -> bool:
    """Deny process creation, execution, sockets and tracing in the kernel; False if unavailable."""
    try:
        import errno

        import pyseccomp as seccomp
    except (ImportError, OSError):
        return False
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        deny = seccomp.ERRNO(errno.EPERM)
        for name in ("fork", "vfork", "execve", "execveat", "socket", "socketpair", "connect", "bind",
                     "listen", "accept", "accept4", "ptrace", "process_vm_writev", "process_vm_readv",
                     "unshare", "setns", "mount", "chroot", "kill", "tkill"):
            rules.add_rule(deny, name)
        # Threads are allowed (clone with CLONE_THREAD); a new process is not.
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, 0x00010000, 0))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # glibc then falls back to clone.
        rules.load()
    except OSError:
        return False
    return True


def install_audit_hook(read_roots, write_root: str, forbidden_packages) -> None:
    forbidden_packages = frozenset(forbidden_packages)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, int) or path is None:
                return
            path = os.path.realpath(os.fsdecode(path))
            writing = mode is not None and any(flag in str(mode) for flag in "wax+")
            if not writing and isinstance(args[2], int):
                writing = bool(args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
            if writing and not _under(path, [write_root]):
                raise SandboxViolation(f"The sandbox may not write {path}.")
            if not writing and not _under(path, read_roots + [write_root]):
                raise SandboxViolation(f"The sandbox may not read {path}.")
        elif event in WRITE_EVENTS:
            for path in args[:2] if event == "os.rename" else args[:1]:
                if isinstance(path, (str, bytes, os.PathLike)) and not _under(
                        os.path.realpath(os.fsdecode(path)), [write_root]):
                    raise SandboxViolation(f"The sandbox may not change {os.fsdecode(path)}.")
        elif event == "import":
            if args[0].partition(".")[0] in forbidden_packages:
                raise SandboxViolation(f"The sandbox may not import {args[0]}.")
        elif event.startswith(FORBIDDEN_EVENTS):
            raise SandboxViolation(f"The sandbox forbids {event}.")

    sys.addaudithook(hook)


class Context:
    """What a handler gets besides its input: the allow-listed API and a log.

    `context.call("records.create", "expense", {...})`, or the same as
    `context.records.create("expense", {...})`.
    """

    def __init__(self, protocol, user: dict, api: list[str], logs: list[str]):
        self._protocol = protocol
        self.user = user
        self.api = api
        self._logs = logs

    def call(self, name: str, *args, **kwargs):
        if name not in self.api:
            raise SandboxViolation(f"{name} is not in the sandbox's API ({', '.join(self.api) or 'none'}).")
        self._protocol.write(json.dumps({"call": name, "args": args, "kwargs": kwargs}, default=str) + "\n")
        self._protocol.flush()
        reply = json.loads(sys.stdin.readline())
        if "error" in reply:
            raise CallFailed(reply["error"])
        return reply.get("value")

    def log(self, message: str) -> None:
        self._logs.append(str(message))

    def __getattr__(self, group: str):
        if group.startswith("_"):
            raise AttributeError(group)
        return ApiGroup(self, group)


class ApiGroup:
    """`context.records` of `context.records.create(...)`: calls `context.call("records.create", ...)`."""

    def __init__(self, context: Context, group: str):
        self._context, self._group = context, group

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self._context.call(f"{self._group}.{name}", *args, **kwargs)


def _plain(value):
    """JSON for the values handlers commonly return besides JSON's own: decimals, dates, UUIDs."""
    import datetime
    import decimal
    import uuid

    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    request = json.loads(sys.stdin.readline())
    logs: list[str] = []
    sys.stdout = sys.stderr = captured = io.StringIO()
    # Writing past RLIMIT_FSIZE then fails with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    paths = [os.path.realpath(path) for path in request["paths"]]
    sys.path[:0] = paths
    read_roots = sorted({os.path.realpath(path) for path in (
        sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"], sys.base_prefix, sys.prefix)} | set(paths))
    seccomp = install_seccomp()
    module_name, _, function_name = request["target"].partition(":")
    # Import what the protocol needs before the hook, then lock down, then the untrusted code.
    install_audit_hook(read_roots, os.path.realpath(request["scratch"]), request["forbidden"])
    os.environ = ForbiddenEnviron()  # noqa: B003 - the real environment holds nothing secret anyway.
    os.chdir(request["scratch"])
    context = Context(protocol, request["user"], request["api"], logs)
    try:
        module = __import__(module_name, fromlist=[function_name])
        value = getattr(module, function_name)(request["payload"], context)
        result = {"ok": True, "value": value}
    except MemoryError:
        result = {"ok": False, "error": "memory", "message": "The handler ran out of memory."}
    except SandboxViolation as error:
        result = {"ok": False, "error": "forbidden", "message": str(error)}
    except BaseException as error:  # noqa: BLE001 - whatever the handler raised is its result.
        lines = traceback.format_exception_only(type(error), error)
        result = {"ok": False, "error": "failed", "message": "".join(lines).strip()}
    logs.extend(line for line in captured.getvalue().splitlines() if line)
    result["logs"] = logs
    result["seccomp"] = seccomp
    try:
        line = json.dumps(result, default=_plain)
    except (TypeError, ValueError) as error:
        line = json.dumps({"ok": False, "error": "failed", "message": f"The result is not JSON: {error}",
                           "logs": logs, "seccomp": seccomp})
    protocol.write(line + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
