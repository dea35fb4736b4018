"""The downloader against a real HTTP server on loopback (no internet): checksum, resume, offline."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from audioforge.errors import DownloadError
from datamodules.download import Release, download, fetch_fsdd, tree_digest


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from ``directory`` and honours ``Range: bytes=N-``; records request headers."""

    directory: Path
    seen: list[dict[str, str]] = []

    def do_GET(self):  # noqa: N802
        RangeHandler.seen.append(dict(self.headers))
        path = self.directory / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("H", (RangeHandler,), {"directory": root})
    RangeHandler.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_checksum(server, tmp_path):
    root, url = server
    payload = bytes(range(256)) * 4000
    (root / "blob.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = download(f"{url}/blob.bin", tmp_path / "out" / "blob.bin", sha256=digest)
    assert dest.read_bytes() == payload
    assert not (tmp_path / "out" / "blob.bin.part").exists()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{url}/blob.bin", tmp_path / "out2" / "blob.bin", sha256="0" * 64)
    assert not (tmp_path / "out2" / "blob.bin.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    root, url = server
    payload = b"audioforge" * 50_000
    (root / "blob.bin").write_bytes(payload)
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(payload[:123_457])
    download(f"{url}/blob.bin", dest, sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert RangeHandler.seen[-1].get("Range") == "bytes=123457-"


def test_offline_gives_a_clear_message(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(DownloadError, match="offline") as info:
        download(f"http://127.0.0.1:{port}/fsdd.tar.gz", tmp_path / "fsdd.tar.gz")
    assert str(tmp_path / "fsdd.tar.gz") in str(info.value)


def test_fetch_fsdd_unpacks_and_verifies_content(server, data_root, tmp_path):
    root, url = server
    clips = sorted((data_root / "fsdd" / "recordings").glob("*_theo_1*.wav"))[:5]
    staging = tmp_path / "stage" / "free-spoken-digit-dataset-1.0.10" / "recordings"
    staging.mkdir(parents=True)
    for c in clips:
        shutil.copy(c, staging / c.name)
    (staging.parent / "README.md").write_text("not a recording")
    with tarfile.open(root / "fsdd.tar.gz", "w:gz") as tar:
        tar.add(staging.parent, arcname=staging.parent.name)
    release = Release("FSDD test", f"{url}/fsdd.tar.gz", "recordings/*.wav", tree_digest(clips), len(clips))
    out = fetch_fsdd(tmp_path / "data" / "fsdd", release)
    assert sorted(p.name for p in out.iterdir()) == sorted(c.name for c in clips)
    wrong = Release("FSDD test", f"{url}/fsdd.tar.gz", "recordings/*.wav", "0" * 64, len(clips))
    with pytest.raises(DownloadError, match="does not match the pinned content"):
        fetch_fsdd(tmp_path / "other" / "fsdd", wrong)
