"""What an ELF file needs to run: its machine, interpreter, libraries and, for a
Node.js addon, the module ABI it was built for (read with pyelftools)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from distill.errors import SpecError

# e_machine -> Debian architecture (the ELF class tells 32 from 64 bits where it matters).
MACHINES = {
    ("EM_X86_64", 64): "amd64",
    ("EM_AARCH64", 64): "arm64",
    ("EM_386", 32): "i386",
    ("EM_ARM", 32): "armhf",
    ("EM_PPC64", 64): "ppc64el",
    ("EM_RISCV", 64): "riscv64",
    ("EM_S390", 64): "s390x",
}
_NODE_ABI = re.compile(r"^node_register_module_v(\d+)$")


@dataclass(frozen=True)
class ElfInfo:
    path: str
    arch: str  # Debian architecture name, or the raw e_machine
    interpreter: str | None
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    node_abi: int | None = None  # node_register_module_vN: built for NODE_MODULE_VERSION N
    napi: bool = False  # napi_register_module_v1: Node-API (any node version)

    @property
    def static(self) -> bool:
        return self.interpreter is None and not self.needed


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def inspect_elf(path: Path, what: str) -> ElfInfo:
    try:
        with path.open("rb") as f:
            return read_elf(f, str(path))
    except (ELFError, OSError, ValueError) as exc:
        raise SpecError(f"{what}: {path} is not a readable ELF file ({exc})") from None


def read_elf(f: BinaryIO, name: str) -> ElfInfo:
    """An ELF file's machine, interpreter, libraries and node ABI (raises ELFError/ValueError)."""
    elf = ELFFile(f)
    arch = MACHINES.get((elf["e_machine"], elf.elfclass), str(elf["e_machine"]))
    interpreter = None
    needed: list[str] = []
    runpath: list[str] = []
    for segment in elf.iter_segments():
        if segment["p_type"] == "PT_INTERP":
            interpreter = str(getattr(segment, "get_interp_name")())  # noqa: B009 (untyped in stubs)
    node_abi, napi = None, False
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                # pyelftools names the string of a tag after it (needed, runpath, rpath).
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(getattr(tag, "needed")))  # noqa: B009
                elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                    attr = "runpath" if tag.entry.d_tag == "DT_RUNPATH" else "rpath"
                    runpath += str(getattr(tag, attr)).split(":")
        elif isinstance(section, SymbolTableSection) and section.name == ".dynsym":
            for sym in section.iter_symbols():
                if sym["st_shndx"] == "SHN_UNDEF":
                    continue
                m = _NODE_ABI.match(sym.name)
                if m:
                    node_abi = int(m.group(1))
                elif sym.name.startswith("napi_register_module_v"):
                    napi = True
    return ElfInfo(name, arch, interpreter, needed, runpath, node_abi, napi)


# What each distroless flavor adds, by soname (Debian 12 and 13 alike).
GLIBC = re.compile(
    r"^(libc|libm|libdl|libpthread|librt|libresolv|libutil|libanl|libnss_\w+|libmvec|libBrokenLocale|"
    r"libthread_db|libc_malloc_debug|ld-linux[-\w.]*|ld64)\.so[.\d]*$"
)
BASE = {"libssl.so.3", "libcrypto.so.3", "libz.so.1", "libzstd.so.1"}
CC = {"libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1"}


def flavor_for(info: ElfInfo) -> str:
    """The smallest distroless flavor that has what the binary links to."""
    if info.static:
        return "static"
    if all(GLIBC.match(n) or n in BASE for n in info.needed):
        return "base"
    if all(GLIBC.match(n) or n in BASE or n in CC for n in info.needed):
        return "cc"
    # Something no flavor has: let the build name it (the check runs on the real tree).
    return "cc"
