"""Auditing an image: its layers streamed once (verified against their digests,
decompressed in memory, whiteouts applied, nothing written to disk) into a table of
headers, then checked.

What is kept of file *content* is small and bounded: the package databases, the OS
release and passwd files, small files whose names look like keys or credentials
(only a flag survives), and the entrypoint's executable (for its ELF headers).
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from isal import igzip

from distill.audit.model import Finding, Report
from distill.debian.deb822 import parse_file
from distill.errors import AuditError
from distill.limits import expansion_limit
from distill.oci.source import Image, Source, Verified
from distill.tarsafe import Capped, EntryBudget, members, open_stream, read_errors

MAX_KEPT = 96 << 20  # file content kept for the checks, at most
# Tar entries over all layers, and how far a layer may expand: distill.tarsafe and
# distill.limits.expansion_limit (max(512 MiB, 100x compressed)), shared with the builds.
MAX_ELF = 64 << 20
_SMALL = 64 << 10

DIR, FILE, LINK, OTHER = "d", "f", "l", "o"
# Kept whole: package databases, OS identity, accounts.
_KEEP_EXACT = {
    "etc/os-release",
    "usr/lib/os-release",
    "etc/passwd",
    "etc/group",
    "etc/debian_version",
    "etc/alpine-release",
    "etc/redhat-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
}
_KEEP_PREFIX = ("var/lib/dpkg/status.d/",)
# What pip installed: DIR/{site,dist}-packages/NAME-VERSION.dist-info/METADATA, except
# Debian's own python3-* packages (/usr/lib/python3/dist-packages, installed by apt).
_DIST_METADATA = re.compile(r"^(?P<site>(?:[^/]+/)*(?:site|dist)-packages)/[^/]+\.dist-info/METADATA$")
_APT_SITE = "usr/lib/python3/dist-packages"
_METADATA_HEAD = 16 << 10  # Name and Version are headers at the top; the rest is the long description
MAX_NODE_LOCK = 64 << 20  # as distill.limits.MAX_JSON
_RPM_BDB = ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages")

SHELLS = {
    "sh",
    "bash",
    "dash",
    "ash",
    "zsh",
    "ksh",
    "ksh93",
    "mksh",
    "pdksh",
    "csh",
    "tcsh",
    "fish",
    "rbash",
    "yash",
    "busybox",
    "toybox",
    "pwsh",
}
PACKAGE_MANAGERS = re.compile(
    r"^(apt|apt-get|apt-cache|aptitude|dpkg|dpkg-deb|apk|yum|dnf|microdnf|rpm|zypper|opkg|pacman|"
    r"pip|pip\d(\.\d+)?|npm|npx|yarn|pnpm|gem|conda|easy_install)$"
)
NETWORK_TOOLS = {
    "curl",
    "wget",
    "nc",
    "netcat",
    "ncat",
    "nc.openbsd",
    "nc.traditional",
    "ssh",
    "scp",
    "sftp",
    "telnet",
    "ftp",
    "tftp",
    "socat",
    "nmap",
    "rsync",
    "ssh-keyscan",
}
BUILD_TOOLS = re.compile(
    r"^((\w+-linux-gnu\w*-)?(gcc|g\+\+|cc|c\+\+|cpp)(-\d+)?|clang(\+\+)?(-\d+)?|tcc|make|gmake|cmake|ninja|"
    r"as|ld|ld\.bfd|ld\.gold|gdb|gdbserver|strace|ltrace|perf|rustc|cargo|javac|go|gfortran)$"
)
SCHEDULERS = {"cron", "crond", "crontab", "anacron", "atd", "at", "busybox-cron"}
_KEY_NAMES = re.compile(
    r"(^id_(rsa|dsa|ecdsa|ed25519)$|^ssh_host_\w+_key$|\.(pem|key|p12|pfx|jks|keystore|ppk)$)"
)
_CRED_NAMES = {
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".env",
    "credentials",
    "config.json",
    ".dockercfg",
    "htpasswd",
    ".htpasswd",
    ".pgpass",
    ".my.cnf",
}
_PRIVATE = re.compile(rb"-----BEGIN ([A-Z ]+ )?PRIVATE KEY-----|PuTTY-User-Key-File")
_SECRET = re.compile(
    rb"(_auth(Token)?\s*=|\"auth\"\s*:|password|passwd|secret|aws_secret_access_key|token\s*=)", re.I
)


@dataclass(slots=True)
class Entry:
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    layer: int
    link: str = ""
    flag: str = ""  # "key" | "credential" | ""


@dataclass
class FileTable:
    """The stacked filesystem: path -> entry, and each directory's children."""

    entries: dict[str, Entry] = field(default_factory=dict)
    children: dict[str, set[str]] = field(default_factory=dict)
    content: dict[str, bytes] = field(default_factory=dict)
    # METADATA path -> (site directory, Name, Version): pip-installed distributions
    dists: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    def python_dists(self) -> list[tuple[str, str, str]]:
        """(site directory, name, version) of every distribution still in the image (a
        later layer's whiteout or reinstall removes or replaces the lower one)."""
        return sorted(v for p, v in self.dists.items() if p in self.entries)

    def add(self, path: str, entry: Entry) -> None:
        old = self.entries.get(path)
        if old is not None and old.kind == DIR and entry.kind != DIR:
            self.remove(path, entry.layer + 1)
        self.entries[path] = entry
        parent = posixpath.dirname(path)
        self.children.setdefault(parent, set()).add(path)
        while parent and parent not in self.entries:  # implicit parents
            self.entries[parent] = Entry(DIR, 0o755, 0, 0, 0, entry.layer)
            up = posixpath.dirname(parent)
            self.children.setdefault(up, set()).add(parent)
            parent = up

    def remove(self, path: str, below_layer: int) -> int:
        """Remove ``path`` and everything under it that came from layers below
        ``below_layer``; the bytes removed."""
        freed = 0
        stack = [path]
        while stack:
            p = stack.pop()
            e = self.entries.get(p)
            if e is None or e.layer >= below_layer:
                continue
            for c in self.children.pop(p, ()):
                stack.append(c)
            del self.entries[p]
            self.content.pop(p, None)
            self.children.get(posixpath.dirname(p), set()).discard(p)
            if e.kind == FILE:
                freed += e.size
        return freed

    def resolve(self, path: str, depth: int = 0) -> str | None:
        """``path`` with symlinks followed (None when it dangles or loops)."""
        path = path.strip("/")
        parts = [p for p in path.split("/") if p]
        cur = ""
        for i, part in enumerate(parts):
            nxt = f"{cur}/{part}" if cur else part
            e = self.entries.get(nxt)
            if e is None:
                return None
            if e.kind == LINK:
                if depth > 40:
                    return None
                target = e.link if e.link.startswith("/") else posixpath.join("/" + cur, e.link)
                rest = "/".join(parts[i + 1 :])
                return self.resolve(posixpath.normpath(posixpath.join(target, rest)), depth + 1)
            cur = nxt
        return cur


def _decompressed(raw: Any) -> Any:
    buffered = io.BufferedReader(raw, 1 << 16)
    magic = buffered.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return igzip.IGzipFile(fileobj=buffered)  # type: ignore[no-untyped-call]
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(buffered)
    return buffered


@dataclass
class Scan:
    table: FileTable
    layer_stats: list[dict[str, Any]]
    uncompressed: int
    wasted: int
    efficiency: float
    waste_top: list[tuple[str, int, int]]  # path, occurrences, cumulative size


def _metadata_head(data: bytes) -> tuple[str, str] | None:
    """Name and Version from a METADATA file's header block (RFC 822 style)."""
    name = version = ""
    for raw in data.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            break
        key, sep, value = line.partition(b":")
        if not sep:
            continue
        k = key.strip().lower()
        if k == b"name":
            name = value.strip().decode("utf-8", "replace")
        elif k == b"version":
            version = value.strip().decode("utf-8", "replace")
    # a name and version pip would take back (no spaces, markers or quotes smuggled in)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", name) and re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,99}", version
    ):
        return name, version
    return None


def node_lock_paths(config: dict[str, Any]) -> tuple[str, str]:
    """The app's package-lock.json and npm's hidden lockfile, in the working directory."""
    wd = ((config.get("config") or {}).get("WorkingDir") or "/").strip("/")
    return posixpath.join(wd, "package-lock.json"), posixpath.join(wd, "node_modules/.package-lock.json")


def _keep_names(config: dict[str, Any]) -> set[str]:
    """Basenames of the executables the entrypoint may run (kept for their ELF headers)."""
    argv = entry_argv(config)
    names = set()
    if argv:
        names.add(posixpath.basename(argv[0]))
        if posixpath.basename(argv[0]) in SHELLS and len(argv) > 2 and argv[1] == "-c":
            words = argv[2].split()
            if words:
                names.add(posixpath.basename(words[0]))
    return names


def config_env(config: dict[str, Any]) -> dict[str, str]:
    """The image config's Env as a dict."""
    env = (config.get("config") or {}).get("Env") or []
    return {k: v for k, _, v in (str(x).partition("=") for x in env)}


def entry_argv(config: dict[str, Any]) -> list[str]:
    c = config.get("config") or {}
    return [str(x) for x in (c.get("Entrypoint") or []) + (c.get("Cmd") or [])]


def scan(
    source: Source,
    image: Image,
    progress: Any = None,
    max_entries: int | None = None,
    keep: Callable[[str], bool] | None = None,
) -> Scan:
    """The image's layers streamed into a :class:`FileTable`; ``keep`` names more files
    whose content is kept (within :data:`MAX_KEPT`), as the vulnerability scan's package
    manifests."""
    table = FileTable()
    budget = EntryBudget(image.name, AuditError, max_entries)
    keep_names = _keep_names(image.config)
    node_locks = node_lock_paths(image.config)
    eff: dict[str, list[int]] = {}  # path -> [occurrences, cumulative size, smallest]
    kept = 0
    stats: list[dict[str, Any]] = []
    total = 0
    diff_ids = image.config.get("rootfs", {}).get("diff_ids", [])

    def note(path: str, size: int) -> None:
        e = eff.get(path)
        if e is None:
            eff[path] = [1, size, size]
        else:
            e[0] += 1
            e[1] += size
            e[2] = min(e[2], size)

    for idx, desc in enumerate(image.layers):
        what = f"{image.name}: layer {idx + 1} ({desc['digest'][:19]})"
        limit = expansion_limit(int(desc.get("size") or 0))
        files = 0
        opaque: set[str] = set()  # directories made opaque in this layer already
        with source.open_blob(desc["digest"], desc.get("size")) as blob:
            stream: Any = Capped(_decompressed(blob), limit, what, AuditError)
            inner: Verified | None = None
            if source.diff_ids:
                inner = Verified(stream, diff_ids[idx], what)
                stream = inner
            try:
                with open_stream(stream) as tf:
                    for m in members(tf, budget):
                        name = posixpath.normpath(m.name.lstrip("/"))
                        if name in (".", "", "..") or name.startswith("../"):
                            continue
                        parent, base = posixpath.split(name)
                        if base == ".wh..wh..opq":
                            # Once per directory and layer: what a lower layer had there is
                            # gone after the first marker, and this layer's entries stay (a
                            # flood of markers would otherwise walk the directory each time).
                            if parent not in opaque:
                                opaque.add(parent)
                                freed = 0
                                for c in list(table.children.get(parent, ())):
                                    freed += table.remove(c, idx)
                                note(parent or "/", freed)
                            continue
                        if base.startswith(".wh."):
                            gone = posixpath.join(parent, base[4:])
                            note(gone, table.remove(gone, idx))
                            continue
                        mode = m.mode & 0o7777
                        if m.isdir():
                            old = table.entries.get(name)
                            if old is not None and old.kind != DIR:
                                table.remove(name, idx)
                            if old is not None and old.kind == DIR:
                                old.mode, old.uid, old.gid = mode, m.uid, m.gid
                            else:
                                table.add(name, Entry(DIR, mode, m.uid, m.gid, 0, idx))
                            continue
                        if m.issym():
                            entry = Entry(LINK, 0o777, m.uid, m.gid, 0, idx, m.linkname)
                        elif m.islnk():
                            target = table.entries.get(posixpath.normpath(m.linkname.lstrip("/")))
                            if target is None:
                                continue
                            entry = Entry(
                                target.kind,
                                target.mode,
                                target.uid,
                                target.gid,
                                target.size,
                                idx,
                                target.link,
                                target.flag,
                            )
                            src = posixpath.normpath(m.linkname.lstrip("/"))
                            if src in table.content:
                                table.content[name] = table.content[src]
                        elif m.isfile():
                            files += 1
                            entry = Entry(FILE, mode, m.uid, m.gid, m.size, idx)
                            data = None
                            want = (
                                name in _KEEP_EXACT
                                or name.startswith(_KEEP_PREFIX)
                                or (keep is not None and keep(name))
                                or (name in node_locks and m.size <= MAX_NODE_LOCK)
                            )
                            elf = base in keep_names and m.size <= MAX_ELF
                            sniff = m.size <= _SMALL and (_KEY_NAMES.search(base) or base in _CRED_NAMES)
                            opened = None  # a member streams once: what read its head reads the rest
                            head = b""
                            if base == "METADATA" and kept + _METADATA_HEAD <= MAX_KEPT:
                                dist = _DIST_METADATA.match(name)
                                table.dists.pop(name, None)  # replaced in this layer
                                if dist and dist.group("site") != _APT_SITE:
                                    opened = tf.extractfile(m)
                                    head = opened.read(_METADATA_HEAD) if opened else b""
                                    kept += len(head)
                                    found = _metadata_head(head)
                                    if found:
                                        table.dists[name] = (dist.group("site"), *found)
                            if (want or elf or sniff) and kept + m.size <= MAX_KEPT:
                                f = opened if opened is not None else tf.extractfile(m)
                                data = head + f.read() if f else b""
                            if data is not None:
                                if sniff:
                                    if _PRIVATE.search(data):
                                        entry.flag = "key"
                                    elif base in _CRED_NAMES and _SECRET.search(data):
                                        entry.flag = "credential"
                                if want or (elf and data[:4] == b"\x7fELF"):
                                    table.content[name] = data
                                    kept += len(data)
                        else:
                            entry = Entry(OTHER, mode, m.uid, m.gid, 0, idx)
                        old = table.entries.get(name)
                        if old is not None:
                            table.remove(name, idx)
                        table.add(name, entry)
                        note(name, entry.size)
                    tar_size = tf.offset
            except read_errors() as exc:
                raise AuditError(f"{what} is not a readable tar ({type(exc).__name__}: {exc})") from None
            try:
                while stream.read(1 << 20):  # the tar's padding and any trailing bytes
                    pass
            except read_errors() as exc:
                raise AuditError(f"{what} is corrupt ({type(exc).__name__}: {exc})") from None
            if inner is not None:
                inner.finish()
            blob.finish()
        total += tar_size
        stats.append(
            {
                "digest": desc["digest"],
                "size": int(desc.get("size") or 0),
                "uncompressed": tar_size,
                "files": files,
            }
        )
        if progress is not None:
            progress(idx + 1, len(image.layers))
    wasted = 0
    minimum = cumulative = 0
    top = []
    for path, (count, cum, small) in eff.items():
        minimum += small
        cumulative += cum
        if count > 1:
            wasted += cum
            top.append((path, count, cum))
    top.sort(key=lambda t: -t[2])
    efficiency = 1.0 if cumulative == 0 else minimum / cumulative
    return Scan(table, stats, total, wasted, efficiency, top[:10])


# -- facts ---------------------------------------------------------------------------


def os_release(table: FileTable) -> dict[str, str]:
    for p in ("etc/os-release", "usr/lib/os-release"):
        real = table.resolve(p)
        data = table.content.get(real or "") or table.content.get(p)
        if data:
            out = {}
            for line in data.decode("utf-8", "replace").splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    out[k.strip()] = v.strip().strip('"')
            return out
    return {}


def dpkg_installed(table: FileTable) -> dict[str, str] | None:
    """name -> version of every installed package in the dpkg databases (status and
    distroless status.d, where every record is installed); None without a database."""
    texts = [
        data
        for path, data in table.content.items()
        if path == "var/lib/dpkg/status"
        or (path.startswith("var/lib/dpkg/status.d/") and not path.endswith(".md5sums"))
    ]
    if not texts:
        return None
    out = {}
    for data in texts:
        for fields in parse_file(data):
            if "Package" in fields and fields.get("Status", "install ok installed").endswith(" installed"):
                out[fields["Package"]] = fields.get("Version", "")
    return out


def package_dbs(table: FileTable, dpkg: dict[str, str] | None) -> dict[str, int | None]:
    """Packages per database the scanners read (None: present, not countable here)."""
    out: dict[str, int | None] = {}
    if dpkg is not None:
        out["dpkg"] = len(dpkg)
    apk = table.content.get("lib/apk/db/installed")
    if apk is not None:
        out["apk"] = sum(1 for line in apk.decode("utf-8", "replace").splitlines() if line.startswith("P:"))
    for p in ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"):
        if p in table.content:
            out["rpm"] = _rpm_count(table.content[p])
    if "rpm" not in out and any(p in table.entries for p in _RPM_BDB):
        out["rpm"] = None
    return out


def _rpm_count(data: bytes) -> int | None:
    try:
        db = sqlite3.connect(":memory:")
        db.deserialize(data)
        (n,) = db.execute("SELECT count(*) FROM Packages").fetchone()
        db.close()
        return int(n)
    except sqlite3.Error:
        return None


def libc(table: FileTable, dpkg: dict[str, str] | None) -> str | None:
    names = {posixpath.basename(p) for p in table.entries if p.startswith(("lib", "usr/lib"))}
    if any(n.startswith("ld-musl-") for n in names):
        return "musl"
    if "libc.so.6" in names:
        version = (dpkg or {}).get("libc6")
        return f"glibc {version.split('-')[0]}" if version else "glibc"
    return None


# -- checks --------------------------------------------------------------------------


def _tools(table: FileTable, path_dirs: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {
        "shell": [],
        "package-manager": [],
        "network-tool": [],
        "build-tool": [],
        "scheduler": [],
    }
    dirs = {d.strip("/") for d in path_dirs}
    for path, e in table.entries.items():
        if e.kind not in (FILE, LINK):
            continue
        parent, base = posixpath.split(path)
        if not (posixpath.basename(parent) in ("bin", "sbin", "busybox") or parent in dirs):
            continue
        if e.kind == FILE and not e.mode & 0o111:
            continue
        if e.kind == LINK and table.resolve(path) is None:
            continue
        if base in SHELLS:
            found["shell"].append("/" + path)
        elif PACKAGE_MANAGERS.match(base):
            found["package-manager"].append("/" + path)
        elif base in NETWORK_TOOLS:
            found["network-tool"].append("/" + path)
        elif BUILD_TOOLS.match(base):
            found["build-tool"].append("/" + path)
        elif base in SCHEDULERS:
            found["scheduler"].append("/" + path)
    return {k: sorted(v) for k, v in found.items()}


_TOOL_FINDINGS = {
    "shell": (
        "IMG-SHELL",
        "high",
        "a shell",
        "A shell lets an attacker who gets code execution run arbitrary commands, and makes "
        "shell-form CMD, exec probes and `kubectl exec` habits possible.",
        "Build on a distroless flavor (no shell); use exec-form CMD/ENTRYPOINT and httpGet/tcpSocket/grpc probes; "
        "debug with `kubectl debug` or a :debug variant outside production.",
    ),
    "package-manager": (
        "IMG-PKG-MANAGER",
        "high",
        "a package manager",
        "A package manager lets an attacker install tools in a running container, and its "
        "database and scripts add packages nobody runs.",
        "Install dependencies at build time in a builder stage (or with distill) and ship only the result.",
    ),
    "network-tool": (
        "IMG-NETWORK-TOOL",
        "medium",
        "download and network tools",
        "curl, wget, nc and ssh are how attackers fetch payloads and move laterally.",
        "Drop them; use httpGet/tcpSocket probes instead of curl health checks.",
    ),
    "build-tool": (
        "IMG-BUILD-TOOL",
        "medium",
        "compilers, build tools or debuggers",
        "Compilers and debuggers let an attacker build and attach tools inside the container, "
        "and mark a single-stage build.",
        "Build in a separate stage and copy only the artefacts into a distroless image.",
    ),
    "scheduler": (
        "IMG-CRON",
        "low",
        "a job scheduler (cron)",
        "cron in an application image is a persistence mechanism and a second process to patch.",
        "Run scheduled work as a Kubernetes CronJob or a separate container.",
    ),
}


# (id, severity, noun, explanation, fix) for setuid, world-writable, key and credential paths.
_PATH_FINDINGS = (
    (
        "IMG-SETUID",
        "high",
        "setuid/setgid file",
        "setuid/setgid programs run with their owner's or group's rights whoever starts them: the classic "
        "local privilege escalation path.",
        "Remove them (or their packages); set `allowPrivilegeEscalation: false` and drop capabilities.",
    ),
    (
        "IMG-WORLD-WRITABLE",
        "medium",
        "world-writable path",
        "Any user in the container can change these (and plant code the application later runs).",
        "chmod o-w them at build time; writable scratch space belongs in a sticky /tmp or an emptyDir volume.",
    ),
    (
        "IMG-PRIVATE-KEY",
        "critical",
        "private key",
        "A private key in an image is readable by anyone who can pull it, in every layer it was ever in.",
        "Remove it from every layer (rebuild; a later `rm` does not help) and rotate it; mount secrets at run time.",
    ),
    (
        "IMG-CREDENTIALS",
        "high",
        "credential-looking file",
        "Files such as .netrc, .npmrc with _authToken, .git-credentials or .docker/config.json hold secrets.",
        "Use build secrets (`RUN --mount=type=secret`) and never COPY them into the image; rotate what leaked.",
    ),
)


def _user_findings(config: dict[str, Any], table: FileTable) -> tuple[str, list[Finding]]:
    user = str((config.get("config") or {}).get("User") or "")
    name = user.split(":")[0]
    findings = []
    uid: int | None = None
    if name.isdigit():
        uid = int(name)
    else:
        for line in table.content.get("etc/passwd", b"").decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                uid = int(fields[2])
    if not name or uid == 0 or name == "root":
        findings.append(
            Finding(
                "IMG-ROOT",
                "high",
                "runs as root",
                "config: User",
                f"The image's User is {user!r}"
                + (" (empty means root)" if not user else "")
                + "; a process escaping the application runs as uid 0 in the container.",
                "Set a numeric non-root user (e.g. 65532:65532, the distroless `nonroot` user), or use a :nonroot variant.",
            )
        )
    elif not name.isdigit():
        findings.append(
            Finding(
                "IMG-USER-NAME",
                "medium",
                "non-numeric user",
                "config: User",
                f"User {user!r} is a name"
                + (f" (uid {uid} in /etc/passwd)" if uid is not None else " not in /etc/passwd")
                + "; Kubernetes `runAsNonRoot` cannot verify a name and refuses to start the pod.",
                f"Use the numeric form, e.g. USER {uid if uid is not None else 65532}:{uid if uid is not None else 65532}.",
            )
        )
    return user or "root (unset)", findings


def audit_image(
    source: Source,
    arch: str | None,
    progress: Any = None,
    keep: Callable[[str], bool] | None = None,
    image: Image | None = None,
) -> tuple[Report, Scan, dict[str, Any]]:
    """The report of one image of ``source`` (``image``: already picked); ``keep`` as :func:`scan`."""
    image = image or source.image(arch)
    s = scan(source, image, progress, keep=keep)
    table = s.table
    cfg = image.config.get("config") or {}
    env = config_env(image.config)
    path_dirs = (env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")
    tools = _tools(table, path_dirs)
    findings: list[Finding] = []
    for kind, paths in tools.items():
        if paths:
            fid, sev, title, why, fix = _TOOL_FINDINGS[kind]
            names = sorted({posixpath.basename(p) for p in paths})
            findings.append(
                Finding(
                    fid,
                    sev,
                    f"{title}: {', '.join(names[:8])}{' …' if len(names) > 8 else ''}",
                    paths[0],
                    why,
                    fix,
                    paths=paths,
                )
            )
    setid = sorted("/" + p for p, e in table.entries.items() if e.kind == FILE and e.mode & 0o6000)
    writable = sorted(
        "/" + p
        for p, e in table.entries.items()
        if e.kind in (FILE, DIR) and e.mode & 0o002 and not (e.kind == DIR and e.mode & 0o1000)
    )
    keys = sorted("/" + p for p, e in table.entries.items() if e.flag == "key")
    creds = sorted("/" + p for p, e in table.entries.items() if e.flag == "credential")
    for paths, (fid, sev, noun, why, fix) in zip((setid, writable, keys, creds), _PATH_FINDINGS, strict=True):
        if paths:
            title = f"{len(paths)} {noun}{'s' if len(paths) > 1 else ''}"
            findings.append(Finding(fid, sev, title, paths[0], why, fix, paths=paths))
    user, user_findings = _user_findings(image.config, table)
    findings += user_findings
    debug = bool(tools["shell"]) and any(p.startswith("/busybox/") for p in tools["shell"])
    ref = (image.ref or source.name).rsplit("/", 1)[-1]
    debug = debug or bool(re.search(r"[:-]debug\b", ref))
    if debug:
        findings.append(
            Finding(
                "IMG-DEBUG",
                "medium",
                "a debug variant",
                "/busybox" if "busybox" in table.entries else "image reference",
                "Debug variants add a busybox shell to a distroless image: for troubleshooting, not production.",
                "Deploy the non-debug variant; attach a debug container (`kubectl debug`) when needed.",
            )
        )
    # dive's CI rule of thumb, a little stricter: 10 MiB wasted, or under 95 % efficient
    if s.wasted >= 10 << 20 or (s.wasted > 1 << 20 and s.efficiency < 0.95):
        findings.append(
            Finding(
                "IMG-WASTED-SPACE",
                "low",
                f"{s.wasted / 1048576:.1f} MiB wasted across layers",
                s.waste_top[0][0],
                f"Files written in one layer and changed or deleted in a later one still ship in the lower layer "
                f"(efficiency {s.efficiency:.1%}, as dive computes it).",
                "Clean up in the same RUN that creates the files, or build in a separate stage.",
                paths=["/" + p for p, _, _ in s.waste_top],
            )
        )
    release = os_release(table)
    dpkg = dpkg_installed(table)
    dbs = package_dbs(table, dpkg)
    regular = [e for e in table.entries.values() if e.kind == FILE]
    facts: dict[str, Any] = {
        "name": source.name,
        "digest": image.digest,
        "architecture": image.config.get("architecture"),
        "os": release.get("PRETTY_NAME")
        or (release.get("ID", "") + " " + release.get("VERSION_ID", "")).strip()
        or None,
        "libc": libc(table, dpkg),
        "packages": sum(v for v in dbs.values() if v) if dbs else 0,
        "package_databases": dbs,
        "files": len(regular),
        "layers": len(image.layers),
        "compressed_bytes": image.compressed_size,
        "uncompressed_bytes": s.uncompressed,
        "content_bytes": sum(e.size for e in regular),
        "wasted_bytes": s.wasted,
        "efficiency": round(s.efficiency, 4),
        "user": user,
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "shells": tools["shell"],
        "package_managers": tools["package-manager"],
        "setuid": setid,
        "debug": debug,
    }
    facts["verdict"] = verdict(facts, findings)
    return Report(source.name, "image", findings, facts), s, image.config


def verdict(facts: dict[str, Any], findings: list[Finding]) -> str:
    bad = []
    if facts["shells"]:
        bad.append("a shell")
    if facts["package_managers"]:
        bad.append("a package manager")
    if facts["setuid"]:
        bad.append(f"{len(facts['setuid'])} setuid/setgid files")
    if any(f.id == "IMG-ROOT" for f in findings):
        bad.append("root")
    if facts.get("debug") and not facts["setuid"] and all(p.startswith("/busybox/") for p in facts["shells"]):
        return "debug variant of a distroless image: a busybox shell and tools" + (
            "; runs as root" if "root" in bad else ""
        )
    if not facts["shells"] and not facts["package_managers"] and not facts["setuid"]:
        head = "distroless-style: no shell, no package manager, no setuid files"
        return head + ("; runs as root" if "root" in bad else "")
    return "conventional image: " + ", ".join(b if b != "root" else "runs as root" for b in bad)


def elf_of_entrypoint(table: FileTable, config: dict[str, Any]) -> tuple[str | None, bytes | None]:
    """The entrypoint's executable (path in the image, content when it is an ELF file kept)."""
    argv = entry_argv(config)
    if not argv:
        return None, None
    cfg = config.get("config") or {}
    env = config_env(config)
    exe = argv[0]
    candidates = (
        [exe]
        if "/" in exe
        else [os.path.join(d, exe) for d in (env.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(":")]
    )
    if "/" in exe and not exe.startswith("/"):
        candidates = [posixpath.join(cfg.get("WorkingDir") or "/", exe)]
    for c in candidates:
        real = table.resolve(c)
        if real is not None and table.entries[real].kind == FILE:
            return "/" + real, table.content.get(real) or table.content.get(c.strip("/"))
    return None, None
