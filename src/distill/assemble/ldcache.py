"""``/etc/ld.so.cache`` written and read in Python, in glibc's format.

What ``ldconfig`` (run by libc-bin's trigger) would leave behind: the "new" format
that glibc ≥ 2.32 writes and reads (``glibc-ld.so.cache1.1``)::

    header   magic "glibc-ld.so.cache" "1.1", nlibs u32, len_strings u32,
             flags u8 (2 = little endian), 3 bytes padding, extension_offset u32, 3 × u32 unused
    entries  nlibs × {flags i32, key u32, value u32, osversion u32, hwcap u64}
    strings  NUL-terminated; key/value are offsets from the start of the file

Entries are sorted so that the dynamic linker's binary search works: descending by
``_dl_cache_libcmp`` (which compares runs of digits as numbers). The key is a
library's soname, the value the path of the soname in the first configured
directory that has it.
"""

from __future__ import annotations

import fnmatch
import functools
import struct
from dataclasses import dataclass

from distill.assemble.expand import FILE
from distill.assemble.tree import Tree

MAGIC = b"glibc-ld.so.cache1.1"
_HEADER = struct.Struct("<20sIIB3sI12s")
_ENTRY = struct.Struct("<iIIIQ")
_ENDIAN_LITTLE = 2
FLAG_ELF_LIBC6 = 0x0003
ARCH_FLAGS = {
    "amd64": 0x0300,  # FLAG_X8664_LIB64
    "arm64": 0x0A00,  # FLAG_AARCH64_LIB64
    "i386": 0x0000,
    "armhf": 0x0900,  # FLAG_ARM_LIBHF
    "ppc64el": 0x0500,  # FLAG_POWERPC_LIB64
    "s390x": 0x0400,  # FLAG_S390_LIB64
    "riscv64": 0x1000,  # FLAG_RISCV_FLOAT_ABI_DOUBLE (lp64d)
    "armel": 0x0B00,  # FLAG_ARM_LIBSF
}


def libcmp(a: str, b: str) -> int:
    """glibc's ``_dl_cache_libcmp``: like strcmp, but runs of digits compare as numbers."""
    i = j = 0
    while i < len(a):
        ca = a[i]
        cb = b[j] if j < len(b) else ""
        if ca.isdigit():
            if cb.isdigit():
                si = i
                while i < len(a) and a[i].isdigit():
                    i += 1
                sj = j
                while j < len(b) and b[j].isdigit():
                    j += 1
                va, vb = int(a[si:i]), int(b[sj:j])
                if va != vb:
                    return va - vb
                continue
            return 1
        if cb.isdigit():
            return -1
        if ca != cb:
            return ord(ca) - (ord(cb) if cb else 0)
        i += 1
        j += 1
    return 0 - (ord(b[j]) if j < len(b) else 0)


@dataclass(frozen=True)
class CacheEntry:
    key: str
    value: str
    flags: int


def write_cache(entries: list[CacheEntry]) -> bytes:
    def descending(x: CacheEntry, y: CacheEntry) -> int:
        return libcmp(y.key, x.key)

    ordered = sorted(entries, key=functools.cmp_to_key(descending))
    strings = bytearray()
    offsets: dict[str, int] = {}
    base = _HEADER.size + _ENTRY.size * len(ordered)

    def intern(s: str) -> int:
        if s not in offsets:
            offsets[s] = base + len(strings)
            strings.extend(s.encode() + b"\0")
        return offsets[s]

    packed = [(e.flags, intern(e.key), intern(e.value)) for e in ordered]
    out = bytearray(_HEADER.pack(MAGIC, len(ordered), len(strings), _ENDIAN_LITTLE, b"\0" * 3, 0, b"\0" * 12))
    for flags, key, value in packed:
        out += _ENTRY.pack(flags, key, value, 0, 0)
    out += strings
    return bytes(out)


class CacheFormatError(ValueError):
    pass


def read_cache(data: bytes) -> list[CacheEntry]:
    """Parse a new-format cache (what the dynamic linker reads), checking its bounds."""
    if len(data) < _HEADER.size:
        raise CacheFormatError("shorter than the header")
    magic, nlibs, len_strings, flags, _, _, _ = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CacheFormatError(f"bad magic {magic!r}")
    if flags & 3 != _ENDIAN_LITTLE:
        raise CacheFormatError("not a little-endian cache")
    end = _HEADER.size + nlibs * _ENTRY.size
    if end + len_strings > len(data):
        raise CacheFormatError("entries or strings run past the end")

    def string(off: int) -> str:
        if not end <= off < len(data):
            raise CacheFormatError(f"string offset {off} out of range")
        return data[off : data.index(b"\0", off)].decode()

    out = []
    for i in range(nlibs):
        eflags, key, value, _, _ = _ENTRY.unpack_from(data, _HEADER.size + i * _ENTRY.size)
        out.append(CacheEntry(string(key), string(value), eflags))
    return out


def lookup(entries: list[CacheEntry], name: str) -> CacheEntry | None:
    """The dynamic linker's binary search (so a mis-sorted cache fails here too)."""
    left, right = 0, len(entries) - 1
    while left <= right:
        middle = (left + right) // 2
        cmp = libcmp(name, entries[middle].key)
        if cmp == 0:
            return entries[middle]
        if cmp < 0:
            left = middle + 1
        else:
            right = middle - 1
    return None


def search_dirs(tree: Tree) -> list[str]:
    """Directories ldconfig would scan: /etc/ld.so.conf (with includes), then /lib, /usr/lib."""
    dirs: list[str] = []

    def read_conf(path: str, depth: int) -> None:
        node = tree.get(tree.resolve(path))
        if node is None or node.kind != FILE or depth > 8:
            return
        for raw in node.read().decode("utf-8", "replace").splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("include"):
                for pattern in line.split()[1:]:
                    parent, _, glob = pattern.strip("/").rpartition("/")
                    for child in tree.children(tree.resolve(parent)):
                        if fnmatch.fnmatchcase(child.rsplit("/", 1)[-1], glob):
                            read_conf("/" + child, depth + 1)
            elif line.startswith("/"):
                dirs.append(line.rstrip("/") or "/")

    read_conf("etc/ld.so.conf", 0)
    if not tree.get("etc/ld.so.conf"):
        for child in tree.children(tree.resolve("etc/ld.so.conf.d")):
            if child.endswith(".conf"):
                read_conf(child, 1)
    return [*dirs, "/lib", "/usr/lib"]


def cache_entries(tree: Tree, arch: str) -> list[CacheEntry]:
    flags = FLAG_ELF_LIBC6 | ARCH_FLAGS.get(arch, 0)
    seen_dirs: set[str] = set()
    seen_keys: set[str] = set()
    out = []
    for directory in search_dirs(tree):
        canonical = tree.resolve(directory)
        node = tree.get(canonical)
        if canonical in seen_dirs or node is None or node.kind != "5":
            continue
        seen_dirs.add(canonical)
        for child in tree.children(canonical):
            target = tree.get(tree.resolve(child))
            if target is None or not target.soname or target.soname in seen_keys:
                continue
            # The soname itself must be there (ldconfig would create that link).
            link = f"{canonical}/{target.soname}" if canonical else target.soname
            found = tree.get(tree.resolve(link))
            if found is None or found.soname != target.soname:
                continue
            seen_keys.add(target.soname)
            out.append(CacheEntry(target.soname, f"{directory.rstrip('/')}/{target.soname}", flags))
    return out
