"""Resumable, checksummed downloads of the public datasets.

``download`` fetches a URL into ``dest`` through a ``.part`` file, resuming with an HTTP
``Range`` request when a previous attempt was cut off, and verifies a SHA-256 when one is
given.  Dataset fetchers (:func:`fetch_fsdd`) pin a release URL and verify the extracted
content against a digest over every file, which holds however the archive was recompressed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from audioforge.errors import DownloadError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass(frozen=True)
class Release:
    """A pinned dataset release: where it is, and the digest of the files it must yield."""

    name: str
    url: str
    member_glob: str          # files inside the archive that make the dataset
    content_sha256: str       # see tree_digest()
    files: int


FSDD = Release(
    name="FSDD v1.0.10",
    url="https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz",
    member_glob="recordings/*.wav",
    content_sha256="99aa5e3a7c822ab55b2a3b47e0b05aeb9f011c54837a12e3831ad24108330829",
    files=3000,
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(files: list[Path]) -> str:
    """SHA-256 over ``name NUL sha256(content) LF`` of every file, sorted by name."""
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        h.update(path.name.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest``, resuming a partial ``dest.part``; verify ``sha256`` if given."""
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "audioforge"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have and response.status == 206
            mode = "ab" if resumed else "wb"
            if have and not resumed:
                log.info("server ignored the resume request; downloading %s from the start", url)
            with open(part, mode) as fh:
                shutil.copyfileobj(response, fh, CHUNK)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url}: {reason}. If this machine is offline, fetch that file on a "
            f"connected machine and place it at {dest} (partial data kept in {part} resumes next time)"
        ) from None
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; the partial "
                                f"file was removed, run again to retry")
    part.replace(dest)
    return dest


def fetch_fsdd(target: Path, release: Release = FSDD) -> Path:
    """Download and unpack FSDD so that ``target/recordings/*.wav`` exists; returns that folder."""
    target = Path(target)
    archive = download(release.url, target.parent / ".downloads" / Path(release.url).name)
    recordings = target / "recordings"
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        try:
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile()
                           and Path(*Path(m.name).parts[1:]).match(release.member_glob)]
                for m in members:
                    m.name = Path(m.name).name
                tar.extractall(tmp, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{archive} is not a readable archive ({exc}); it was removed, run again") from None
        files = sorted(Path(tmp).glob("*.wav"))
        digest = tree_digest(files)
        if len(files) != release.files or digest != release.content_sha256:
            raise DownloadError(f"{release.name} from {release.url} does not match the pinned content "
                                f"({len(files)} files, digest {digest}; expected {release.files}, "
                                f"{release.content_sha256}); {archive} kept for inspection")
        recordings.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.move(str(f), recordings / f.name)
    log.info("%s: %d recordings in %s", release.name, len(files), recordings)
    return recordings
