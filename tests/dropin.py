"""What a user switching from Google's distroless images relies on, as checks of our own.

Google publishes, beside its images, the structure tests each must pass; these are the
same properties, stated here in this project's words and checked on a built layout's
files and by running the image in podman: the exact users and groups, the files every
image has (and the ones production images must not have), busybox's version in the
debug variants, the whole standard library importing in python3, Java's encoding
settings and JAVA_VERSION, and certificates a static binary can read.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
CODENAMES = {"debian13": ("13", "trixie"), "debian12": ("12", "bookworm")}
# The static busybox each Debian release carries (Google's debug images: 1.37.0, Debian 13's).
BUSYBOX = {"debian13": "1.37.0", "debian12": "1.35.0"}


@dataclass
class Member:
    kind: str  # "file", "dir", "link"
    mode: int
    uid: int
    gid: int
    link: str
    data: bytes


def image_files(layout: Path, arch: str = "amd64") -> dict[str, Member]:
    """Every path of the image a one-image (or one-platform) layout holds, layers applied
    in order with their whiteouts: path (no leading '/') -> its member."""
    blobs = layout / "blobs" / "sha256"

    def doc(digest: str) -> dict:  # type: ignore[type-arg]
        return json.loads((blobs / digest.split(":", 1)[1]).read_bytes())  # type: ignore[no-any-return]

    top = doc(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])
    if "manifests" in top:  # an index: the platform's manifest
        top = doc(next(m["digest"] for m in top["manifests"] if m["platform"]["architecture"] == arch))
    files: dict[str, Member] = {}
    for layer in top["layers"]:
        with tarfile.open(blobs / layer["digest"].split(":", 1)[1], "r:gz") as tf:
            for m in tf:
                path = m.name.removeprefix("./").rstrip("/")
                parent, _, name = path.rpartition("/")
                if name.startswith(".wh."):
                    gone = f"{parent}/{name[4:]}".lstrip("/")
                    for p in [p for p in files if p == gone or p.startswith(gone + "/")]:
                        del files[p]
                    continue
                kind = "dir" if m.isdir() else "link" if m.issym() else "file"
                data = tf.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
                files[path] = Member(kind, m.mode, m.uid, m.gid, m.linkname, data)
    return files


def resolve(files: dict[str, Member], path: str) -> Member | None:
    """The member ``path`` names, its symlinks followed (absolute ones from the root)."""
    parts = [p for p in path.strip("/").split("/") if p]
    done: list[str] = []
    for _ in range(64):
        if not parts:
            return files.get("/".join(done), Member("dir", 0o755, 0, 0, "", b"") if not done else None)
        here = "/".join([*done, parts[0]])
        m = files.get(here)
        if m is None:
            return None
        if m.kind == "link":
            target = [p for p in m.link.split("/") if p]
            done = [] if m.link.startswith("/") else done
            parts = target + parts[1:]
            while parts and parts[0] == "..":
                parts.pop(0)
                if done:
                    done.pop()
            continue
        done.append(parts.pop(0))
    raise AssertionError(f"symlink loop at {path}")


def check_common(files: dict[str, Member], distro: str, flavor: str, variant: str) -> None:
    """What every flavor and variant has, as Google's base, static and debug tests state it."""
    where = f"{distro}/{flavor}:{variant}"
    assert files["etc/passwd"].data.decode() == PASSWD, where
    assert files["etc/group"].data.decode() == GROUP, where
    for path in (
        "tmp",
        "root",
        "home/nonroot",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/services",
        "etc/mime.types",
        "usr/share/zoneinfo",
        "usr/share/doc/ca-certificates/copyright",
        "usr/share/doc/tzdata/copyright",
    ):
        assert resolve(files, path) is not None, f"{where}: /{path} is missing"
    assert resolve(files, "usr/share/zoneinfo/Europe/Berlin") is not None, where
    # Debian's own os-release, as scanners read it (Google rewrites it: PRETTY_NAME="Distroless",
    # VERSION="Debian GNU/Linux 13 (trixie)"); ID and VERSION_ID are the same in both.
    release = resolve(files, "etc/os-release")
    assert release is not None and release.kind == "file", where
    fields = dict(line.split("=", 1) for line in release.data.decode().splitlines() if "=" in line)
    number, codename = CODENAMES[distro]
    assert (fields["ID"], fields["VERSION_ID"]) == ("debian", f'"{number}"'), where
    assert fields["VERSION"] == f'"{number} ({codename})"', where
    if flavor != "static":
        assert resolve(files, "var/lib/dpkg/status.d/libc6") is not None, where
    # Production variants have no shell at all; debug ones have busybox at /busybox only.
    assert resolve(files, "bin/sh") is None, f"{where} has /bin/sh"
    debug = variant.startswith("debug")
    assert (resolve(files, "busybox/sh") is not None) == debug, where
    assert (resolve(files, "busybox/busybox") is not None) == debug, where


def check_runtime_files(files: dict[str, Member], flavor: str, where: str) -> None:
    """The runtime's own files, as Google's python3, java and nodejs tests state them."""
    if flavor == "python3":
        assert (
            resolve(files, "usr/bin/python") is not None and resolve(files, "usr/bin/python3") is not None
        ), where
    if flavor.startswith("java"):
        java = resolve(files, "usr/bin/java")
        assert java is not None and java.kind == "file" and java.mode & 0o111, where
        home = next(
            p.removesuffix("/bin/java")
            for p in files
            if p.endswith("/bin/java") and p.startswith("usr/lib/jvm/")
        )
        assert resolve(files, f"{home}/bin/javac") is None, f"{where}: a JDK's javac is in the JRE image"
        for helper in ("lib/jexec", "lib/jspawnhelper"):
            m = resolve(files, f"{home}/{helper}")
            if m is not None:  # Debian's JRE ships jspawnhelper (jexec is in the JDK only)
                assert m.mode & 0o111 == 0o111, f"{where}: {helper} is not executable by all"
        assert resolve(files, f"{home}/lib/jspawnhelper") is not None, where
        assert resolve(files, "etc/ssl/certs/java/cacerts") is not None, where
    if flavor.startswith("nodejs"):
        node = resolve(files, "nodejs/bin/node")
        assert node is not None and node.kind == "file" and node.mode & 0o111, where
        for absent in (
            "nodejs/include/node/node.h",
            "nodejs/lib/node_modules/npm",
            "nodejs/lib/node_modules/corepack",
            "nodejs/bin/npm",
            "nodejs/bin/npx",
            "nodejs/bin/corepack",
            "usr/bin/npm",
        ):
            assert resolve(files, absent) is None, f"{where}: /{absent} is there"


# Walk every module the interpreter ships and import it; skip only what cannot import on
# Linux (Windows-only modules), CPython's own tests, modules that exit when imported,
# and what needs a package Debian ships apart (turtle: python3-tk; dbm.gnu: python3-gdbm;
# _distutils_system_mod: Debian's hook for the distutils it no longer ships).
IMPORT_EVERYTHING = """
import pkgutil, sys
skip = {
    "asyncio.windows_events", "asyncio.windows_utils", "ctypes.wintypes", "encodings.mbcs",
    "encodings.oem", "encodings.cp65001", "multiprocessing.popen_spawn_win32",
    "_pyrepl.windows_console", "winreg", "nturl2path", "_ios_support",
    "distutils._msvccompiler", "distutils.command.bdist_msi", "distutils.msvc9compiler",
    "unittest.__main__", "venv.__main__", "__phello__.spam", "lib2to3.pgen2.conv",
    "turtle", "dbm.gnu", "_distutils_system_mod",
}
failed = []
def broken(name):
    failed.append(name + ": " + repr(sys.exc_info()[1]))
count = 0
for info in pkgutil.walk_packages(onerror=broken):
    name = info.name
    if name in skip or name == "test" or name.startswith("test."):
        continue
    try:
        __import__(name)
        count += 1
    except BaseException as exc:
        failed.append(name + ": " + repr(exc))
for must in ("curses", "readline", "dbm.ndbm", "_pyrepl.unix_console", "_pyrepl.curses",
             "_pyrepl.unix_eventqueue", "_curses", "_dbm", "sqlite3", "_pydecimal", "pydoc_data.topics"):
    if sys.version_info >= (3, 13) or not must.startswith(("_pyrepl", "_pydecimal")):
        __import__(must)
print("IMPORTED", count, "FAILED", len(failed), *failed, sep="\\n")
"""

# Google's encoding check, our own: what the JVM says of the locale and the encodings.
JAVA_ENCODING = """
public class Encoding {
    public static void main(String[] args) {
        System.out.println(String.join(" ",
            String.valueOf(System.getenv("LANG")),
            java.util.Locale.getDefault().toString(),
            java.nio.charset.Charset.defaultCharset().toString(),
            System.getProperty("file.encoding"),
            System.getProperty("sun.jnu.encoding"),
            System.getProperty("java.version"),
            String.valueOf(System.getenv("JAVA_VERSION")),
            String.valueOf(java.awt.GraphicsEnvironment.getLocalGraphicsEnvironment().getAllFonts().length)));
    }
}
"""

# A static binary that trusts the image's certificates the way Go's crypto/x509 does on
# Linux: $SSL_CERT_FILE, else the first bundle of the usual list that opens; it must
# hold PEM certificates. Prints the file and how many.
CERTS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    const char *files[] = {getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt",
                           "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", 0};
    for (int i = 0; i < 5; i++) {
        if (i > 0 && !files[i]) break;
        if (!files[i]) continue;
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        char line[4096]; int begin = 0, end = 0;
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "-----BEGIN CERTIFICATE-----", 27)) begin++;
            if (!strncmp(line, "-----END CERTIFICATE-----", 25)) end++;
        }
        fclose(f);
        if (begin > 0 && begin == end) { printf("%s %d\n", files[i], begin); return 0; }
    }
    puts("no certificates");
    return 1;
}
"""
