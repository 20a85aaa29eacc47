"""Look-up views over verified Packages files.

A :class:`PackageIndex` maps one cached Packages file (memory-mapped) plus its
look-up table (package name -> paragraph offsets, provided name -> offsets). Only
the paragraphs a resolution touches are ever parsed, which is what makes a warm
resolve fast. A :class:`Universe` is the union of the indexes of every suite and
component for one architecture, in source precedence order.
"""

from __future__ import annotations

import marshal
import mmap
from pathlib import Path

from distill.archive.cache import atomic_write, read_sealed, seal
from distill.debian.deb822 import paragraph_at, scan_index
from distill.debian.packages import Package, package_from_fields
from distill.debian.version import version_key

_TABLE_FORMAT = 2  # 2: sealed (checksummed) marshal


def build_table(data: bytes, table_path: Path) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    names, provides = scan_index(data)
    atomic_write(table_path, seal(marshal.dumps((_TABLE_FORMAT, names, provides))))
    return names, provides


def load_table(table_path: Path) -> tuple[dict[str, list[int]], dict[str, list[int]]] | None:
    """The table, or None when it is missing or of another format (then it is made again
    from the index); :class:`CorruptEntryError` when it is damaged. marshal is not safe on arbitrary bytes, so the payload
    is only unmarshalled after its SHA256 (written with it) matches."""
    payload = read_sealed(table_path, "index table")  # CorruptEntryError when damaged
    if payload is None:
        return None
    try:
        fmt, names, provides = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if fmt != _TABLE_FORMAT or not isinstance(names, dict) or not isinstance(provides, dict):
        return None
    return names, provides


class PackageIndex:
    """One verified Packages file (one suite, component and architecture)."""

    def __init__(
        self,
        path: Path,
        names: dict[str, list[int]],
        provides: dict[str, list[int]],
        *,
        suite: str,
        component: str,
    ) -> None:
        self.path = path
        self.suite = suite
        self.component = component
        self._names = names
        self._provides = provides
        self._parsed: dict[int, Package] = {}
        size = path.stat().st_size
        if size:
            with open(path, "rb") as f:
                self._data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            self._data = b""

    def _at(self, offset: int) -> Package:
        pkg = self._parsed.get(offset)
        if pkg is None:
            pkg = package_from_fields(paragraph_at(self._data, offset), self.suite, self.component)
            self._parsed[offset] = pkg
        return pkg

    def packages(self, name: str) -> list[Package]:
        return [self._at(o) for o in self._names.get(name, ())]

    def providers(self, name: str) -> list[Package]:
        return [self._at(o) for o in self._provides.get(name, ())]

    def names(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return sum(len(v) for v in self._names.values())


class Universe:
    """Every package available for one architecture, across suites and components."""

    def __init__(self, arch: str, indexes: list[PackageIndex]) -> None:
        self.arch = arch
        self.indexes = indexes
        self._cand: dict[str, list[Package]] = {}
        self._prov: dict[str, list[Package]] = {}

    def _usable(self, pkg: Package) -> bool:
        return pkg.architecture in (self.arch, "all")

    def _merge(self, pkgs: list[Package]) -> list[Package]:
        # Highest version first; for equal versions the earlier source wins (apt's
        # order for equal pins). Sorting is stable, so file order breaks ties.
        seen: set[tuple[str, str, str]] = set()
        out: list[Package] = []
        for p in sorted(pkgs, key=lambda p: version_key(p.version), reverse=True):
            if p.key not in seen and self._usable(p):
                seen.add(p.key)
                out.append(p)
        return out

    def candidates(self, name: str) -> list[Package]:
        """Real packages called ``name``, best (highest version) first."""
        got = self._cand.get(name)
        if got is None:
            got = self._merge([p for ix in self.indexes for p in ix.packages(name)])
            self._cand[name] = got
        return got

    def providers(self, name: str) -> list[Package]:
        """Packages whose Provides names ``name``, best first."""
        got = self._prov.get(name)
        if got is None:
            got = self._merge([p for ix in self.indexes for p in ix.providers(name)])
            self._prov[name] = got
        return got

    def known(self, name: str) -> bool:
        return bool(self.candidates(name) or self.providers(name))

    def all_names(self) -> set[str]:
        return {n for ix in self.indexes for n in ix.names()}

    def size(self) -> int:
        return sum(len(ix) for ix in self.indexes)
