"""Downloads from mirrors served on the loopback interface: verification, fallback, atomicity."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import threading
from functools import partial

import numpy as np
import pytest
from measure import allocation_peak

from tinygrad_lenet.data import (
    DATASETS,
    ENV_VAR,
    DatasetNotFoundError,
    DownloadError,
    cache_dir,
    download_file,
    encode_idx,
    load_mnist,
    read_idx,
    write_fake_dataset,
)


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path.startswith("/short/"):  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b only a little")
            return
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):  # a client that stopped reading (a size limit)
            pass

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    _Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name, spec in list(DATASETS.items()):
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, mirrors=(), system_dirs=()))


def publish(monkeypatch, www, mirrors, dataset="mnist", **kw):
    """Fake data set files in www/good, registered with the given mirror URLs."""
    spec = write_fake_dataset(www / "good", dataset, mirrors=tuple(mirrors), **kw)
    monkeypatch.setitem(DATASETS, spec.name, spec)
    return spec


def corrupt_copies(www, subdir="bad"):
    """www/<subdir>: each file with one flipped bit in its data (re-gzipped, so gzip itself is valid)."""
    (www / subdir).mkdir()
    for f in (www / "good").iterdir():
        raw = bytearray(gzip.decompress(f.read_bytes()))
        raw[-1] ^= 1
        (www / subdir / f.name).write_bytes(gzip.compress(bytes(raw)))


def test_downloads_into_cache_then_loads_offline(server, monkeypatch):
    url, www = server
    publish(monkeypatch, www, [f"{url}/good/"], n_test=15)
    images, labels = load_mnist("test", progress=False)
    assert images.shape == (15, 28, 28) and labels.shape == (15,)
    cached = sorted(p.name for p in cache_dir("mnist").iterdir())
    assert cached == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    np.testing.assert_array_equal(read_idx(cache_dir("mnist") / cached[1]), labels)
    n_requests = len(_Handler.requests)
    again, _ = load_mnist("test", progress=False)  # from the cache: no new request
    assert len(_Handler.requests) == n_requests
    np.testing.assert_array_equal(again, images)


def test_falls_back_to_next_mirror_after_corrupt_download(server, monkeypatch):
    url, www = server
    publish(monkeypatch, www, [f"{url}/bad/", f"{url}/good/"])
    corrupt_copies(www)
    load_mnist("train", progress=False)
    assert _Handler.requests == ["/bad/train-images-idx3-ubyte.gz", "/good/train-images-idx3-ubyte.gz",
                                 "/bad/train-labels-idx1-ubyte.gz", "/good/train-labels-idx1-ubyte.gz"]
    assert sorted(p.name for p in cache_dir("mnist").iterdir()) == ["train-images-idx3-ubyte.gz",
                                                                    "train-labels-idx1-ubyte.gz"]


def test_corrupt_truncated_and_missing_downloads_leave_nothing_behind(server, monkeypatch):
    url, www = server
    spec = publish(monkeypatch, www, [f"{url}/bad/", f"{url}/cut/", f"{url}/missing/", f"{url}/short/"])
    corrupt_copies(www)
    (www / "cut").mkdir()
    for f in (www / "good").iterdir():
        (www / "cut" / f.name).write_bytes(f.read_bytes()[:-30])
    with pytest.raises(DatasetNotFoundError) as e:
        load_mnist("train", progress=False)
    message = str(e.value)
    expected = spec.files["train"][0].sha256
    assert f"{url}/bad/train-images-idx3-ubyte.gz: checksum mismatch" in message
    assert f"expected {expected}" in message
    assert f"{url}/cut/train-images-idx3-ubyte.gz: checksum mismatch: the gzip stream ends early" in message
    assert f"{url}/missing/train-images-idx3-ubyte.gz: HTTPError: HTTP Error 404" in message
    assert f"{url}/short/train-images-idx3-ubyte.gz: OSError: connection closed after 16 of 1000 bytes" in message
    assert not cache_dir("mnist").exists()


def test_explicit_root_is_the_download_target(server, monkeypatch, tmp_path):
    url, www = server
    publish(monkeypatch, www, [f"{url}/good/"])
    root = tmp_path / "data" / "here"
    load_mnist("test", root=root, progress=False)
    assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert not cache_dir("mnist").exists()


def test_file_url_mirror(monkeypatch, tmp_path):
    spec = write_fake_dataset(tmp_path / "mirror", "fashion-mnist", mirrors=((tmp_path / "mirror").as_uri() + "/",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", spec)
    images, labels = load_mnist("train", dataset="fashion-mnist", progress=False)
    assert images.shape == (40, 28, 28)
    assert (cache_dir("fashion-mnist") / "train-labels-idx1-ubyte.gz").is_file()


def test_download_file_reports_every_failure_and_keeps_existing_file(server, tmp_path):
    url, www = server
    raw = encode_idx(np.arange(10, dtype=np.uint8))
    (www / "x.gz").write_bytes(gzip.compress(raw))
    dest = tmp_path / "x.gz"
    dest.write_bytes(b"previous")
    with pytest.raises(DownloadError) as e:
        download_file([f"{url}/x.gz", f"{url}/nope.gz"], dest, "0" * 64, progress=False)
    assert [u for u, _ in e.value.failures] == [f"{url}/x.gz", f"{url}/nope.gz"]
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["www", "x.gz"]


def test_download_file_with_progress_bar(server, tmp_path, capsys):
    import hashlib
    url, www = server
    raw = encode_idx(np.arange(5000, dtype=np.int32))
    (www / "y").write_bytes(raw)
    dest = download_file([f"{url}/y"], tmp_path / "y", hashlib.sha256(raw).hexdigest(), progress=True)
    assert dest.read_bytes() == raw
    assert "y:" in capsys.readouterr().err  # the tqdm bar, labelled with the file name


def test_a_gzip_bomb_from_a_mirror_is_cut_off_at_the_expected_size(server, monkeypatch):
    """A mirror serving 16 KB that inflate to 256 MiB: the download stops once more than
    the expected bytes came out, with bounded memory, and the next mirror is used."""
    url, www = server
    spec = publish(monkeypatch, www, [f"{url}/bomb/", f"{url}/good/"], n_test=15)
    (www / "bomb").mkdir()
    member = gzip.compress(bytes(1 << 24), compresslevel=1)  # 16 MiB of zeros in ~16 KB
    for f in (www / "good").iterdir():
        (www / "bomb" / f.name).write_bytes(member * 16)
    with allocation_peak() as peak:
        images, _ = load_mnist("test", progress=False)
    assert images.shape == (15, 28, 28)
    assert peak.bytes < 16_000_000, f"the bomb took {peak.bytes:,} bytes"
    assert _Handler.requests == ["/bomb/t10k-images-idx3-ubyte.gz", "/good/t10k-images-idx3-ubyte.gz",
                                 "/bomb/t10k-labels-idx1-ubyte.gz", "/good/t10k-labels-idx1-ubyte.gz"]
    size = spec.files["test"][0].size
    with pytest.raises(DownloadError, match=rf"checksum mismatch: it decompresses to more than the expected "
                                            rf"{size:,} bytes; the download was stopped"):
        download_file([f"{url}/bomb/t10k-images-idx3-ubyte.gz"], www / "x.gz", "0" * 64, size=size, progress=False)
    assert not (www / "x.gz").exists()
