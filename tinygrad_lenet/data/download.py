"""Download a data file from a list of mirrors, verify it, and only then put it in place.

The file is streamed into a temporary file beside the destination (with a tqdm progress
bar), checked against the SHA-256 of its decompressed bytes, and moved into place with
os.replace; on any failure nothing is left behind and the next mirror is tried.
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
from .idx import gunzip

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum; `failures` holds (url, reason) pairs."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]]):
        super().__init__(message)
        self.failures = list(failures)


class _ChecksumMismatch(Exception):
    pass


def decompressed_sha256(data: bytes, gzipped: bool) -> tuple[str, int, str | None]:
    """(SHA-256 hex, byte count, problem or None) of `data` after gunzip when `gzipped`."""
    raw, problem = gunzip(data) if gzipped else (data, None)
    return hashlib.sha256(raw).hexdigest(), len(raw), problem


def download_file(urls: Sequence[str], dest: str | os.PathLike, sha256: str, *,
                  progress: bool | None = None, timeout: float = 30.0) -> Path:
    """Fetch `dest` from the first of `urls` whose content matches `sha256`; returns `dest`.

    `sha256` is that of the decompressed bytes when `dest` ends in `.gz`. `progress=None`
    shows a progress bar only on a terminal. Raises DownloadError listing every mirror's failure.
    """
    dest = Path(dest)
    failures: list[tuple[str, str]] = []
    for url in urls:
        try:
            with atomic_write(dest) as f:
                _fetch(url, f, dest.name, progress, timeout)
                f.seek(0)
                actual, size, problem = decompressed_sha256(f.read(), dest.suffix == ".gz")
                if problem is not None or actual != sha256:
                    detail = f"{problem}; " if problem else ""
                    raise _ChecksumMismatch(f"{detail}SHA-256 of the {size} decompressed bytes is {actual}, "
                                            f"expected {sha256}")
            return dest
        except _ChecksumMismatch as e:
            failures.append((url, f"checksum mismatch: {e}"))
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError is an OSError
            failures.append((url, f"{type(e).__name__}: {e}"))
    lines = "\n".join(f"  {url}: {reason}" for url, reason in failures) or "  (no mirrors configured)"
    raise DownloadError(f"Could not download {dest.name} into {dest.parent}:\n{lines}", failures)


def _fetch(url: str, out, label: str, progress: bool | None, timeout: float) -> None:
    """Stream `url` into the open binary file `out`, with a progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "tinygrad_lenet"})
    with contextlib.closing(urllib.request.urlopen(request, timeout=timeout)) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  disable=None if progress is None else not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise OSError(f"connection closed after {received} of {total} bytes")
