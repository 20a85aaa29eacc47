"""What maintainer scripts and base-passwd would have made, generated natively.

Each function looks at the tree and writes what should be there; writing content
that is already there is not a change, so a level only carries what it altered.
"""

from __future__ import annotations

import re
from pathlib import Path

from distill.assemble import jks
from distill.assemble.expand import DIR, FILE, SYMLINK
from distill.assemble.pem import PemError, pem_bodies, pem_certificates
from distill.assemble.tree import Node, Tree, check_link_target, dir_node, file_node, symlink_node
from distill.distros import get_distro
from distill.errors import BuildError, SpecError, UnsafeEntryError
from distill.limits import MAX_TEXT, read_regular
from distill.spec.model import Accounts, PathEntry, expand_arch, parse_mode

NONROOT_UID = 65532
BUNDLE = "etc/ssl/certs/ca-certificates.crt"
STATUS_D = "var/lib/dpkg/status.d"
JAVA_CACERTS = "etc/ssl/certs/java/cacerts"

NSSWITCH = b"""\
passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
"""

_USERS = [
    ("root", 0, 0, "root", "/root", "/sbin/nologin"),
    ("nobody", 65534, 65534, "nobody", "/nonexistent", "/sbin/nologin"),
    ("nonroot", NONROOT_UID, NONROOT_UID, "nonroot", "/home/nonroot", "/sbin/nologin"),
]
_GROUPS: list[tuple[str, int, list[str]]] = [
    ("root", 0, []),
    ("nobody", 65534, []),
    ("tty", 5, []),
    ("staff", 50, []),
    ("nonroot", NONROOT_UID, []),
]


def write_entry(tree: Tree, path: str, node: Node, mtime: int) -> None:
    """Set ``path`` (parents created, through symlinks) unless it already holds the same thing."""
    parent, _, base = path.rpartition("/")
    where = f"{tree.makedirs(parent, mtime)}/{base}" if parent else base
    existing = tree.get(where)
    if existing is not None:
        same_meta = (existing.mode, existing.uid, existing.gid) == (node.mode, node.uid, node.gid)
        if existing.kind == DIR:
            if node.kind != DIR:
                raise BuildError(f"cannot write /{path}: a directory is there")
            if same_meta:
                return
        elif same_meta and existing.kind == node.kind == FILE and existing.read() == node.read():
            return  # same content from a lower level or a package: not a change
    tree.put(where, node)


def accounts(tree: Tree, extra: Accounts, mtime: int) -> None:
    """/etc/passwd, /etc/group, /etc/nsswitch.conf and the home directories."""
    users = list(_USERS)
    groups = [(n, g, list(m)) for n, g, m in _GROUPS]
    for u in extra.users:
        if any(name == u.name or uid == u.uid for name, uid, *_ in users):
            raise SpecError(f"accounts: user {u.name!r} (uid {u.uid}) clashes with an existing user")
        users.append(
            (
                u.name,
                u.uid,
                u.gid if u.gid is not None else u.uid,
                u.name,
                u.home or f"/home/{u.name}",
                u.shell,
            )
        )
    for g in extra.groups:
        if any(name == g.name or gid == g.gid for name, gid, _ in groups):
            raise SpecError(f"accounts: group {g.name!r} (gid {g.gid}) clashes with an existing group")
        groups.append((g.name, g.gid, list(g.members)))
    known_gids = {gid for _, gid, _ in groups}
    for name, _, gid, *_ in users[len(_USERS) :]:
        if gid not in known_gids:
            groups.append((name, gid, []))
            known_gids.add(gid)
    for n, uid, gid, gecos, home, shell in users:
        _check_fields("/etc/passwd", n, uid, gid, gecos, home, shell)
        if ".." in home.split("/"):  # its directory is made below: /home/../etc must not be
            raise UnsafeEntryError(f"/etc/passwd: the home of user {n!r} contains '..'")
    for n, gid, members in groups:
        _check_fields("/etc/group", n, gid, *members)
        if any("," in m for m in members):
            raise UnsafeEntryError(f"/etc/group: a member of group {n!r} holds ','")
    passwd = "".join(
        f"{n}:x:{uid}:{gid}:{gecos}:{home}:{shell}\n" for n, uid, gid, gecos, home, shell in users
    )
    group = "".join(f"{n}:x:{gid}:{','.join(members)}\n" for n, gid, members in groups)
    write_entry(tree, "etc/passwd", file_node(passwd.encode(), 0o644, mtime), mtime)
    write_entry(tree, "etc/group", file_node(group.encode(), 0o644, mtime), mtime)
    write_entry(tree, "etc/nsswitch.conf", file_node(NSSWITCH, 0o644, mtime), mtime)
    write_entry(tree, "root", dir_node(0o700, mtime), mtime)
    write_entry(tree, "home", dir_node(0o755, mtime), mtime)
    write_entry(tree, "tmp", dir_node(0o1777, mtime), mtime)
    for _, uid, gid, _, home, _ in users[2:]:
        if home.startswith("/home/"):
            write_entry(tree, home.strip("/"), dir_node(0o700, mtime, uid, gid), mtime)


def _check_fields(file: str, *fields: str | int) -> None:
    """Refuse a field that would split a line of /etc/passwd or /etc/group.

    The spec model already refuses these with the field's position; this is the
    writer's own guard, so that no other caller can inject a line (a second uid 0)."""
    for value in fields:
        if isinstance(value, int):
            if isinstance(value, bool) or not 0 <= value <= 2**32 - 2:
                raise UnsafeEntryError(f"{file}: id {value} is out of range")
        elif not isinstance(value, str) or any(c == ":" or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise UnsafeEntryError(f"{file}: a field holds ':' or a control character (newline, NUL)")


def os_release(tree: Tree, distro_name: str, mtime: int) -> None:
    """Keep base-files' os-release; make one (and the /etc link) when no package did."""
    distro = get_distro(distro_name)
    if tree.get(tree.resolve("usr/lib/os-release")) is None:
        text = (
            f'PRETTY_NAME="Debian GNU/Linux {distro.version} ({distro.codename})"\n'
            f'NAME="Debian GNU/Linux"\nVERSION_ID="{distro.version}"\n'
            f'VERSION="{distro.version} ({distro.codename})"\nVERSION_CODENAME={distro.codename}\n'
            "ID=debian\n"
        )
        write_entry(tree, "usr/lib/os-release", file_node(text.encode(), 0o644, mtime), mtime)
    if tree.get("etc/os-release") is None:
        write_entry(tree, "etc/os-release", symlink_node("../usr/lib/os-release", mtime), mtime)
    if tree.get("etc/localtime") is None:
        write_entry(tree, "etc/localtime", symlink_node("/usr/share/zoneinfo/Etc/UTC", mtime), mtime)


def ca_bundle(tree: Tree, extra: list[str], mtime: int, drop_sources: bool) -> None:
    """/etc/ssl/certs/ca-certificates.crt as update-ca-certificates builds it:
    every certificate under /usr/share/ca-certificates, then local ones, in order.

    Certificates seen at any level are remembered, so a bundle rebuilt higher up (for
    a spec's extra certificates) still holds them after their files were trimmed."""
    seen = tree.memory.setdefault("ca-certificates", {})
    for p in list(tree.nodes):
        if p.startswith("usr/share/ca-certificates/") and p.endswith(".crt"):
            node = tree.get(tree.resolve(p))
            if node is not None and node.kind == FILE:
                seen[p] = node.read()
    for path in extra:
        data = _read_local(path, "certificates", MAX_TEXT)
        if next(pem_bodies(data), None) is None:
            raise SpecError(f"certificates: {path} holds no PEM certificate")
        name = Path(path).name
        name = name if name.endswith(".crt") else name + ".crt"
        write_entry(tree, f"usr/local/share/ca-certificates/{name}", file_node(data, 0o644, mtime), mtime)
    local = sorted(
        p for p in tree.nodes if p.startswith("usr/local/share/ca-certificates/") and p.endswith(".crt")
    )
    if not seen and not local:
        return
    sources = [*((p, seen[p]) for p in sorted(seen)), *((p, tree.nodes[p].read()) for p in local)]
    tree.memory["ca-bundle"] = sources
    bundle = bytearray()
    for _, data in sources:
        bundle += data if data.endswith(b"\n") else data + b"\n"
    write_entry(tree, BUNDLE, file_node(bytes(bundle), 0o644, mtime), mtime)
    if drop_sources:
        for p in sorted(seen):
            tree.trim(p)


def java_truststore(tree: Tree, mtime: int) -> None:
    """/etc/ssl/certs/java/cacerts from the CA bundle, as ca-certificates-java makes it,
    once a JRE links its ``lib/security/cacerts`` there."""
    sources: list[tuple[str, bytes]] = tree.memory.get("ca-bundle", [])
    if not sources or not any(
        p.startswith("usr/lib/jvm/")
        and p.endswith("/lib/security/cacerts")
        and node.kind == SYMLINK
        and node.link == "/" + JAVA_CACERTS
        for p, node in tree.nodes.items()
    ):
        return
    certs: list[tuple[str, bytes]] = []
    for path, data in sources:
        stem = Path(path).name.removesuffix(".crt")
        try:
            ders = pem_certificates(data)
        except PemError as exc:
            raise BuildError(f"/{path}: {exc}") from None
        for i, der in enumerate(ders):
            certs.append((f"debian:{stem}{'' if len(ders) == 1 else f'-{i + 1}'}.pem", der))
    store = jks.write_jks(certs, mtime * 1000)
    write_entry(tree, JAVA_CACERTS, file_node(store, 0o644, mtime), mtime)


# A JRE's ``release`` file: JAVA_VERSION="21.0.8" is the version ``java -version`` prints.
_JAVA_RELEASE = re.compile(rb'^JAVA_VERSION="([0-9][0-9A-Za-z.+_-]{0,63})"\r?$', re.MULTILINE | re.ASCII)
MAX_JAVA_RELEASE = 64 << 10


def java_version(tree: Tree) -> str | None:
    """The JAVA_VERSION of the JRE that /usr/bin/java runs, from its ``release`` file (the
    value Google's java images and the upstream JDK images set); None without one."""
    try:
        real = tree.resolve("usr/bin/java")
    except UnsafeEntryError:
        return None
    java = tree.get(real)
    if java is None or java.kind != FILE or not real.endswith("/bin/java"):
        return None
    release = tree.get(tree.resolve(real.removesuffix("/bin/java") + "/release"))
    if release is None or release.kind != FILE or release.size > MAX_JAVA_RELEASE:
        return None
    found = _JAVA_RELEASE.search(release.read())
    return found.group(1).decode() if found else None


# The largest local file a spec's paths: entry may add (it is held in memory).
MAX_LOCAL_FILE = 1 << 30


def _read_local(path: str, field: str, limit: int = MAX_LOCAL_FILE) -> bytes:
    """A file the spec names: regular files only (a FIFO is refused, not waited on), capped."""
    return read_regular(Path(path), limit, error=SpecError, what=f"{field}:")


def spec_paths(tree: Tree, entries: list[PathEntry], mtime: int, arch: str = "") -> None:
    for e in entries:
        path = e.path.strip("/")  # absolute and free of "..", as the spec model checks
        if e.type == "directory":
            mode = parse_mode(e.mode) if e.mode is not None else 0o755
            write_entry(tree, path, dir_node(mode, mtime, e.uid, e.gid), mtime)
        elif e.type == "symlink":
            assert e.target is not None
            target = expand_arch(e.target, arch)
            check_link_target(path, target, f"paths: {e.path}")
            write_entry(tree, path, Node(SYMLINK, 0o777, e.uid, e.gid, mtime, link=target), mtime)
        else:
            data = e.content.encode() if e.content is not None else _read_local(e.source or "", "paths")
            mode = parse_mode(e.mode) if e.mode is not None else 0o644
            write_entry(tree, path, file_node(data, mode, mtime, e.uid, e.gid), mtime)


_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+", re.ASCII)  # Debian Policy 5.6.1


def status_d(tree: Tree, pkg: str, control_text: bytes, md5sums: bytes, mtime: int) -> None:
    """/var/lib/dpkg/status.d/<pkg> (control fields); the package's md5sums are kept for
    :func:`md5sums`, which writes them once the level's tree is final."""
    # The name becomes a file name and the control text one paragraph that scanners
    # read as the package's record: no path tricks, no second paragraph, no NUL.
    if not _PACKAGE_NAME.fullmatch(pkg):
        raise UnsafeEntryError(f"{STATUS_D}: {pkg!r} is not a Debian package name")
    body = control_text.rstrip(b"\n")
    if b"\n\n" in body or b"\0" in body or b"\r" in body:
        raise UnsafeEntryError(f"{STATUS_D}/{pkg}: the control data is not one paragraph")
    # A field twice is not a control file (dpkg refuses one), and readers disagree on which
    # value counts: Syft drops such a package from its SBOM, others take either.
    seen: set[bytes] = set()
    for n, line in enumerate(body.split(b"\n"), 1):
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        name = line.split(b":", 1)[0].strip().lower()
        if name in seen:
            shown = f" {name.decode()!r}" if re.fullmatch(rb"[a-z0-9-]{1,40}", name) else ""
            raise UnsafeEntryError(f"{STATUS_D}/{pkg}: line {n} of the control data repeats the field{shown}")
        seen.add(name)
    text = control_text if control_text.endswith(b"\n") else control_text + b"\n"
    write_entry(tree, f"{STATUS_D}/{pkg}", file_node(text, 0o644, mtime), mtime)
    if md5sums:
        tree.memory.setdefault("md5sums", {})[pkg] = md5sums


def _is_file(tree: Tree, path: str, dirs: dict[str, str | None]) -> bool:
    """Whether ``path`` names a regular file in the tree, symlinks followed. Its
    directory is resolved once per directory (``dirs`` remembers them): a package's
    md5sums list thousands of files in a few hundred directories."""
    directory, _, name = path.strip("/").rpartition("/")
    if directory not in dirs:
        try:
            dirs[directory] = tree.resolve(directory)
        except UnsafeEntryError:
            dirs[directory] = None
    where = dirs[directory]
    if where is None:
        return False
    node = tree.get(f"{where}/{name}" if where else name)
    if node is not None and node.kind == SYMLINK:
        try:
            node = tree.get(tree.resolve(path))
        except UnsafeEntryError:
            return False
    return node is not None and node.kind == FILE


def md5sums(tree: Tree, mtime: int) -> None:
    """/var/lib/dpkg/status.d/<pkg>.md5sums for every package so far, each listing only
    the files the tree holds now: whatever trimming, a generator (the CA bundle takes the
    certificates it merged) or anything else removed is not claimed, as debsums and
    scanners' file ownership read these lists against the image."""
    dirs: dict[str, str | None] = {}
    for pkg, raw in tree.memory.get("md5sums", {}).items():
        kept = [
            line
            for line in raw.splitlines(keepends=True)
            if _is_file(tree, line[34:].strip().decode("utf-8", "surrogateescape"), dirs)
        ]
        path = f"{STATUS_D}/{pkg}.md5sums"
        if kept:
            data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in kept)
            write_entry(tree, path, file_node(data, 0o644, mtime), mtime)
        elif tree.get(path) is not None:
            tree.remove(path)


def busybox_applets(binary: bytes) -> list[str]:
    """The applet names compiled into a busybox binary, read from its name table.

    The table is the sorted, NUL-separated list that ``busybox --list`` prints; it is
    data, so reading it needs no emulator for a foreign architecture."""
    start = binary.find(b"[\0[[\0")
    if start < 0:
        raise BuildError("the busybox binary has no applet table")
    names = []
    for part in binary[start : start + 65536].split(b"\0"):
        if not re.fullmatch(rb"[a-z0-9_.\-\[\]]+", part):
            break
        names.append(part.decode())
    if len(names) < 10:
        raise BuildError("the busybox applet table is too short to be real")
    return names


def busybox(tree: Tree, binary_node: Node, mtime: int) -> list[str]:
    """/busybox/busybox and a link per applet (the debug variant)."""
    write_entry(tree, "busybox", dir_node(0o755, mtime), mtime)
    write_entry(tree, "busybox/busybox", binary_node, mtime)
    applets = [a for a in busybox_applets(binary_node.read()) if a != "busybox"]
    for applet in applets:
        write_entry(tree, f"busybox/{applet}", symlink_node("busybox", mtime), mtime)
    return applets


__all__ = [
    "BUNDLE",
    "NONROOT_UID",
    "STATUS_D",
    "accounts",
    "busybox",
    "busybox_applets",
    "ca_bundle",
    "md5sums",
    "os_release",
    "spec_paths",
    "status_d",
]
