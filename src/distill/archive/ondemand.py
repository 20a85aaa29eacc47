"""A spec's Debian archive, opened on first use only: a build whose packages are all in
the cache never reads an index (nor imports the archive stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distill.archive.repo import Archive
    from distill.options import Options
    from distill.spec.model import Spec


class ArchiveOnDemand:
    def __init__(self, spec: Spec, options: Options) -> None:
        self.spec = spec
        self.options = options
        self._archive: Archive | None = None

    def get(self) -> Archive:
        if self._archive is None:
            from distill.pipeline import open_archive

            self._archive = open_archive(self.spec, self.options)
        return self._archive

    def fetch(self, packages: list[Any]) -> None:
        """Download the packages a build lacks (``build(fetch=...)``)."""
        from distill.fetch import fetch_debs

        a = self.get()
        fetch_debs(packages, a, a.cache, reporter=self.options.reporter, jobs=self.options.jobs)

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None


__all__ = ["ArchiveOnDemand"]
