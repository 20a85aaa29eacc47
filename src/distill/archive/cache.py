"""The content-addressed cache.

Layout under the cache directory::

    lists/<key>.InRelease     last InRelease seen per suite URL (re-verified on use)
    lists/<key>.json          its HTTP validators (ETag, Last-Modified)
    indexes/<sha256>          a verified, decompressed Packages file, named by its hash
    indexes/<sha256>.idx      the parsed look-up table for it (marshal)
    debs/<sha256>.deb         verified .deb files, named by their hash
    tmp/                      partial downloads (resumed by the next run)

Every write goes to a temporary file in the same directory and is renamed into
place, so readers see the old entry or the new one, never half a file, and two
concurrent builds writing the same entry both succeed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distill"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """A cache directory; all of distill's persistent state outside the project."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()).expanduser()

    def _dir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def url_key(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()[:32]

    def inrelease_path(self, url: str) -> Path:
        return self._dir("lists") / f"{self.url_key(url)}.InRelease"

    def validators_path(self, url: str) -> Path:
        return self._dir("lists") / f"{self.url_key(url)}.json"

    def index_path(self, sha256: str) -> Path:
        return self._dir("indexes") / sha256

    def index_table_path(self, sha256: str) -> Path:
        return self._dir("indexes") / f"{sha256}.idx"

    def deb_path(self, sha256: str) -> Path:
        return self._dir("debs") / f"{sha256}.deb"

    def partial_path(self, sha256: str) -> Path:
        return self._dir("tmp") / f"{sha256}.partial"

    def has_deb(self, sha256: str) -> bool:
        return (self.root / "debs" / f"{sha256}.deb").is_file()
