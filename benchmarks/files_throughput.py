"""Files: upload and download throughput through the product against the storage alone (FL-1, FL-2).

In tenant `bench_files`, for files of 1 MB and 50 MB (text, so that no preview is queued; each
upload's first bytes differ, so that deduplication never skips a write):
- upload through the product: `files.services.upload` (one read to check, hash and sniff, the
  quota and deduplication under the tenant's lock, the write to storage, the StoredFile row and
  its audit event) against the storage alone (`default_storage.save` of the same file);
- download through the product: the signed URL's view with Django's test Client (session, token,
  the owner's check, FileResponse streamed in 64 KiB blocks) against the storage alone
  (`default_storage.open` read in 64 KiB blocks);
- this process's RSS sampled every 5 ms during the 50 MB upload and download: PASS when it grows
  by less than 16 MiB (a third of the file), i.e. the bytes are streamed, never held in memory.
The storage is the configured default (local disk under the benchmark's LOWCODE_HOME unless
AWS_STORAGE_BUCKET_NAME is set). Files made by the run are deleted at the end.

Run: .venv/bin/python benchmarks/files_throughput.py [--quick]
"""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import uuid

import _setup
from _setup import console, fmt_time

TENANT = "bench_files"
USERNAME = "bench_files"
MB = 1024 * 1024
BLOCK = 64 * 1024
RSS_GROWTH_LIMIT_MIB = 16.0


class RssSampler:
    """Samples this process's RSS in a thread while the block runs."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()

    def __enter__(self):
        self.samples.append(_setup.rss_mb())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.samples.append(_setup.rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.samples.append(_setup.rss_mb())

    @property
    def growth(self) -> float:
        return max(self.samples) - self.samples[0]


def make_text_file(size: int) -> str:
    """A temporary text file of `size` bytes (base64 lines of random bytes)."""
    handle, path = tempfile.mkstemp(prefix="lowcode-bench-", suffix=".txt")
    with os.fdopen(handle, "wb") as out:
        line = 76
        while size > 0:
            chunk = min(size, 1024 * (line + 1))
            text = base64.b64encode(os.urandom(chunk)).replace(b"\n", b"")[:chunk]
            out.write(b"\n".join(text[i:i + line] for i in range(0, len(text), line + 1))[:chunk].ljust(chunk, b"a"))
            size -= chunk
    return path


def make_unique(path: str) -> None:
    """New first bytes: the next upload is not a duplicate of the previous one."""
    with open(path, "r+b") as out:
        out.write(uuid.uuid4().hex.encode())


def read_blocks(blob) -> int:
    with blob:
        return drain(iter(lambda: blob.read(BLOCK), b""))


def drain(chunks) -> int:
    total = 0
    for chunk in chunks:
        total += len(chunk)
    return total


def main(argv: list[str] | None = None) -> int:
    args = _setup.parse_args(__doc__.splitlines()[0], argv)
    sizes = [(1 * MB, 5 if args.quick else 20), (50 * MB, 1 if args.quick else 3)]
    _setup.header("Files: upload and download throughput, product against storage", args.quick)

    with _setup.django_environment(keep_servers=args.keep_servers):
        from django.contrib.auth import get_user_model
        from django.core.files import File
        from django.core.files.storage import default_storage, storages
        from django.test import Client

        from files import services

        tenant, _created = _setup.ensure_tenant(TENANT)
        rows, memory_rows, made, flat = [], [], [], True
        with _setup.in_tenant(tenant):
            user, _ = get_user_model().objects.get_or_create(username=USERNAME)
            client = Client(HTTP_HOST=tenant.get_primary_domain().domain)
            client.force_login(user)
            storage_kind = type(storages["default"]).__name__
            with _setup.progress() as bar:
                for size, times in sizes:
                    path = make_text_file(size)
                    task = bar.add_task(f"{size // MB} MB x {times}", total=times)
                    timings = {"storage up": [], "product up": [], "storage down": [], "product down": []}
                    try:
                        for _ in range(times):
                            make_unique(path)
                            with open(path, "rb") as source:
                                seconds, key = _setup.timed(lambda s=source: default_storage.save(
                                    f"bench/{uuid.uuid4().hex}", File(s)))
                            timings["storage up"].append(seconds)
                            seconds, _read = _setup.timed(lambda k=key: read_blocks(default_storage.open(k, "rb")))
                            timings["storage down"].append(seconds)
                            default_storage.delete(key)

                            make_unique(path)
                            with open(path, "rb") as source, RssSampler() as up_rss:
                                seconds, stored = _setup.timed(lambda s=source, n=f"bench-{size // MB}mb.txt":
                                                               services.upload(s, name=n, user=user))
                            made.append(stored)
                            timings["product up"].append(seconds)
                            url = services.describe(stored, owner_type="upload", owner_key="",
                                                    object_id=stored.pk, field="")["download_url"]

                            def download(u=url):
                                response = client.get(u)
                                response.block_size = BLOCK
                                assert response.status_code == 200, response.status_code
                                return drain(response.streaming_content)

                            with RssSampler() as down_rss:
                                seconds, read = _setup.timed(download)
                            assert read == size, (read, size)
                            timings["product down"].append(seconds)
                            bar.advance(task)
                        if size >= 50 * MB:
                            for label, sampler in (("upload", up_rss), ("download", down_rss)):
                                ok = sampler.growth < RSS_GROWTH_LIMIT_MIB
                                flat &= ok
                                memory_rows.append([f"{size // MB} MB {label}", f"{sampler.samples[0]:.0f} MiB",
                                                    f"{max(sampler.samples):.0f} MiB", f"{sampler.growth:+.1f} MiB",
                                                    str(len(sampler.samples)), _setup.verdict(ok)])
                    finally:
                        os.unlink(path)
                    for direction in ("up", "down"):
                        product = _setup.median(timings[f"product {direction}"])
                        storage = _setup.median(timings[f"storage {direction}"])
                        rows.append([f"{size // MB} MB {'upload' if direction == 'up' else 'download'}",
                                     fmt_time(storage), f"{size / MB / storage:,.0f} MB/s",
                                     fmt_time(product), f"{size / MB / product:,.0f} MB/s",
                                     f"{product / storage:.2f}"])
            for stored in made:
                services.delete_file(stored)

    _setup.table(f"Median time per file ({storage_kind})", ["transfer", "storage alone", "storage MB/s",
                                                             "through the product", "product MB/s",
                                                             "product / storage"], rows)
    _setup.table("RSS of this process during the 50 MB transfers (sampled every 5 ms)",
                 ["transfer", "before", "peak", "growth", "samples", f"< {RSS_GROWTH_LIMIT_MIB:.0f} MiB"], memory_rows)
    console.print("[dim]Upload through the product reads the file twice (checks and hash, then the write) and "
                  "writes a row and an audit event; the download adds a request (session, token, owner check) "
                  "around the same streamed read.[/dim]")
    console.print(f"Streamed, flat memory: {_setup.verdict(flat)}")
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
