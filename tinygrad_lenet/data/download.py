"""Download a data file from a list of mirrors, verify it, and only then put it in place.

The file is streamed into a temporary file beside the destination (with a tqdm progress
bar) while the SHA-256 of its decompressed bytes is computed, piece by piece: a mirror
sending more than the expected size (a decompression bomb) is cut off there. Only a
file with the right checksum is moved into place, with os.replace; on any failure
nothing is left behind and the next mirror is tried.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.request
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from ..atomic import atomic_write
from .idx import GunzipStream

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum; `failures` holds (url, reason) pairs."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]]):
        super().__init__(message)
        self.failures = list(failures)


class _ChecksumMismatch(Exception):
    pass


class _Verifier:
    """SHA-256 and byte count of a download's (decompressed) bytes, computed as the
    chunks arrive, so nothing is held in memory and a gzip bomb stops at `size` + 1 bytes."""

    def __init__(self, gzipped: bool, size: int | None):
        self.hash, self.size = hashlib.sha256(), size
        self.stream = GunzipStream(self.hash.update, size) if gzipped else None
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        if self.stream is not None:  # corrupt data is reported once the download ends; a bomb at once
            self.stream.feed(chunk)
            if self.size is not None and self.stream.size > self.size:
                raise _ChecksumMismatch(f"{self.stream.problem}; the download was stopped")
            return
        self.count += len(chunk)
        if self.size is not None and self.count > self.size:
            raise _ChecksumMismatch(f"more than the expected {self.size:,} bytes; the download was stopped")
        self.hash.update(chunk)

    def check(self, sha256: str) -> None:
        problem = self.stream.finish() if self.stream is not None else None
        count = self.stream.size if self.stream is not None else self.count
        actual = self.hash.hexdigest()
        if problem is not None or actual != sha256:
            detail = f"{problem}; " if problem else ""
            raise _ChecksumMismatch(f"{detail}SHA-256 of the {count} decompressed bytes is {actual}, expected {sha256}")


def download_file(urls: Sequence[str], dest: str | os.PathLike, sha256: str, *, size: int | None = None,
                  progress: bool | None = None, timeout: float = 30.0) -> Path:
    """Fetch `dest` from the first of `urls` whose content matches `sha256`; returns `dest`.

    `sha256` and `size` (when known) are those of the decompressed bytes when `dest`
    ends in `.gz`; a mirror sending more than `size` bytes (decompressed) is cut off.
    `progress=None` shows a progress bar only on a terminal. `timeout` bounds each wait
    for the server. Raises DownloadError listing every mirror's failure.
    """
    dest = Path(dest)
    failures: list[tuple[str, str]] = []
    for url in urls:
        try:
            with atomic_write(dest) as f:
                verifier = _Verifier(dest.suffix == ".gz", size)
                _fetch(url, f, verifier, dest.name, progress, timeout)
                verifier.check(sha256)
            return dest
        except _ChecksumMismatch as e:
            failures.append((url, f"checksum mismatch: {e}"))
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError is an OSError
            failures.append((url, f"{type(e).__name__}: {e}"))
    lines = "\n".join(f"  {url}: {reason}" for url, reason in failures) or "  (no mirrors configured)"
    raise DownloadError(f"Could not download {dest.name} into {dest.parent}:\n{lines}", failures)


def _fetch(url: str, out, verifier: _Verifier, label: str, progress: bool | None, timeout: float) -> None:
    """Stream `url` into the open binary file `out` and `verifier`, with a progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_lenet"})
    with contextlib.closing(urllib.request.urlopen(request, timeout=timeout)) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  disable=None if progress is None else not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                verifier.feed(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
