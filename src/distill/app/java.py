"""Java applications: a runnable jar, or Jib-style exploded layers.

``exploded`` (the default) splits the jar the way Jib does, so a code change
rebuilds only the small top layer: dependency jars (``libs``) in one layer,
resources in another, classes last, and an entrypoint that names the main class
with a classpath of the three. ``jar`` copies the jar and runs ``java -jar``.
"""

from __future__ import annotations

import glob
import zipfile
from pathlib import Path

from distill.assemble.expand import FILE
from distill.assemble.tree import Node
from distill.errors import SpecError

MAX_ENTRY = 1 << 30
MAX_TOTAL = 4 << 30
_SIGNATURE = (".SF", ".RSA", ".DSA", ".EC")


def manifest(jar: zipfile.ZipFile) -> dict[str, str]:
    """The main section of META-INF/MANIFEST.MF (continuation lines joined)."""
    try:
        text = jar.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except KeyError:
        return {}
    fields: dict[str, str] = {}
    last = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last:
            fields[last] += line[1:]
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last.strip()] = value.strip()
    return fields


def open_jar(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SpecError(f"app.source {path} is not a readable jar ({exc})") from None


def main_class(path: Path, override: str | None) -> str:
    with open_jar(path) as jar:
        found = manifest(jar).get("Main-Class")
    if override:
        return override
    if not found:
        raise SpecError(
            f"{path.name} has no Main-Class in META-INF/MANIFEST.MF",
            hint="build it with one (jar --main-class, Maven's archive manifest, Gradle's jar.manifest) "
            "or set app.main_class",
        )
    return found


def libraries(patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if p.endswith(".jar"))
        if not matches:
            raise SpecError(f"app.libs: {pattern} matches no jar")
        out += matches
    names = [p.name for p in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(
            f"app.libs: two jars are named {dupes[0]}", hint="each lands in /app/libs by its file name"
        )
    return out


def exploded(path: Path, dest: str) -> tuple[list[tuple[str, Node]], list[tuple[str, Node]]]:
    """(resources, classes) entries of the jar under dest/resources and dest/classes."""
    resources: list[tuple[str, Node]] = []
    classes: list[tuple[str, Node]] = []
    total = 0
    base = dest.strip("/")
    with open_jar(path) as jar:
        for info in jar.infolist():
            name = info.filename
            parts = name.rstrip("/").split("/")
            if name.startswith("/") or ".." in parts or "\\" in name:
                raise SpecError(f"{path.name}: entry {name!r} would escape the application directory")
            if name == "META-INF/MANIFEST.MF" or (name.startswith("META-INF/") and name.endswith(_SIGNATURE)):
                continue  # the manifest and signatures describe the jar, not the exploded classes
            total += info.file_size
            if info.file_size > MAX_ENTRY or total > MAX_TOTAL:
                raise SpecError(f"{path.name}: entry {name!r} declares an implausible size (a zip bomb?)")
            is_class = name.endswith(".class")
            into = f"{base}/classes" if is_class else f"{base}/resources"
            rel = "/".join(p for p in parts if p)
            if not rel:
                continue
            if info.is_dir():
                continue  # directories are made on the way to the files
            data = jar.read(info)
            (classes if is_class else resources).append(
                (f"{into}/{rel}", Node(FILE, 0o644, size=len(data), data=data))
            )
    return resources, classes
