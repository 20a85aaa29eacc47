"""Assembly rules on generated packages: path safety, merged-/usr, trimming, status.d,
accounts, the CA bundle, ld.so.cache (read back in glibc's format) and busybox."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from debrepo import Entry, Pkg, make_deb
from distill.archive.cache import Cache
from distill.assemble import ldcache, system
from distill.assemble.expand import Expanded, expand
from distill.assemble.rootfs import LevelInput, assemble
from distill.assemble.tree import Tree, Trimmer
from distill.errors import UnsafeEntryError
from distill.spec.model import Accounts, Spec, Trim


def host_lib(name: str) -> bytes:
    for d in (
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
    ):
        p = Path(d) / name
        if p.exists():
            return p.resolve().read_bytes()
    pytest.fail(f"the host has no {name} (zlib1g is part of every Debian system)")


def expanded(tmp_path: Path, pkg: Pkg) -> Expanded:
    data = make_deb(pkg)
    sha = hashlib.sha256(data).hexdigest()
    cache = Cache(tmp_path / "cache")
    path = cache.deb_path(sha)
    path.write_bytes(data)
    return expand(cache, path, sha)


MERGED = Pkg(
    "base-files",
    entries=[
        Entry("./etc", "dir"),
        Entry("./tmp", "dir", mode=0o1777),
        Entry("./usr", "dir"),
        Entry("./usr/bin", "dir"),
        Entry("./usr/lib", "dir"),
        Entry("./bin", "symlink", link="usr/bin"),
        Entry("./lib", "symlink", link="usr/lib"),
        Entry("./usr/lib/os-release", data=b"ID=debian\nVERSION_ID=13\n"),
        Entry("./etc/os-release", "symlink", link="../usr/lib/os-release"),
        Entry("./etc/debian_version", data=b"13.0\n"),
        Entry("./usr/share/doc/base-files/copyright", data=b"GPL\n"),
        Entry("./usr/share/doc/base-files/changelog.gz", data=b"x" * 100),
        Entry("./usr/share/man/man1/x.1.gz", data=b"man"),
        Entry("./usr/share/locale/de/LC_MESSAGES/x.mo", data=b"mo"),
    ],
)


def test_unpack_follows_merged_usr_links_and_trims(tmp_path: Path) -> None:
    lib = Pkg(
        "libz1",
        entries=[
            Entry("./lib/x86_64-linux-gnu", "dir"),
            Entry("./lib/x86_64-linux-gnu/libz.so.1.3", data=host_lib("libz.so.1")),
            Entry("./lib/x86_64-linux-gnu/libz.so.1", "symlink", link="libz.so.1.3"),
            Entry("./bin/tool", data=b"#!tool", mode=0o4755),
        ],
    )
    tree = Tree()
    trimmer = Trimmer(Trim())
    dropped = tree.add_package("base-files", expanded(tmp_path, MERGED), trimmer, None)
    tree.add_package("libz1", expanded(tmp_path, lib), trimmer, None)
    # dpkg resolves directory symlinks: lib/... lands in usr/lib/..., bin/tool in usr/bin.
    assert tree.get("usr/lib/x86_64-linux-gnu/libz.so.1.3") is not None
    assert tree.get("lib").kind == "2"  # type: ignore[union-attr]
    assert tree.get("usr/bin/tool").mode == 0o4755  # type: ignore[union-attr]
    assert tree.get("usr/lib/x86_64-linux-gnu/libz.so.1.3").soname == "libz.so.1"  # type: ignore[union-attr]
    assert tree.get("tmp").mode == 0o1777  # type: ignore[union-attr]
    # Docs, man pages and translations go; the copyright stays.
    assert tree.get("usr/share/doc/base-files/copyright") is not None
    assert dropped == {
        "usr/share/doc/base-files/changelog.gz",
        "usr/share/man/man1/x.1.gz",
        "usr/share/locale/de/LC_MESSAGES/x.mo",
    }
    assert tree.get("usr/share/man/man1/x.1.gz") is None


def test_trim_can_be_turned_off_and_extended() -> None:
    keep_all = Trimmer(Trim(docs=False, man=False, translations=False))
    assert not keep_all.drops("usr/share/doc/a/changelog.gz")
    assert not keep_all.drops("usr/share/man/man1/a.1.gz")
    more = Trimmer(Trim(paths=["/usr/lib/*/gconv/**", "/opt/x"]))
    assert more.drops("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so")
    assert more.drops("opt/x") and not more.drops("opt/y")
    assert not more.drops("usr/share/doc/a/copyright")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (Entry("./../etc/passwd", data=b"x"), "escape the image root"),
        (Entry("./usr/../../x", data=b"x"), "escape the image root"),
        (Entry("./usr/evil", "symlink", link="../../etc"), "points outside the image root"),
        (Entry("./evil", "symlink", link="/../../etc"), "points outside the image root"),
        (Entry("./dev/null", "char"), "device"),
        (Entry("./run/fifo", "fifo"), "device"),
        (Entry("./usr/hard", "hardlink", link="usr/nothing"), "not a file"),
        (Entry("./usr/hard", "hardlink", link="../etc/shadow"), "escapes the image root"),
    ],
)
def test_entries_that_escape_the_root_are_refused(tmp_path: Path, entry: Entry, message: str) -> None:
    pkg = Pkg("evil", entries=[Entry("./usr", "dir"), Entry("./run", "dir"), Entry("./dev", "dir"), entry])
    with pytest.raises(UnsafeEntryError, match=message):
        Tree().add_package("evil", expanded(tmp_path, pkg), Trimmer(Trim()), None)


def test_a_file_through_a_link_that_leaves_the_root_is_refused(tmp_path: Path) -> None:
    tree = Tree()
    tree.add_package(
        "a", expanded(tmp_path, Pkg("a", entries=[Entry("./up", "symlink", link="/")])), Trimmer(Trim()), None
    )
    # "/" is the image root itself, so this is fine; a chain that climbs above it is not.
    tree.add_package(
        "b", expanded(tmp_path, Pkg("b", entries=[Entry("./up/x", data=b"1")])), Trimmer(Trim()), None
    )
    assert tree.get("x") is not None
    with pytest.raises(UnsafeEntryError):
        tree.resolve("up/../../x")


def test_hardlinks_become_files_with_the_same_content(tmp_path: Path) -> None:
    pkg = Pkg(
        "h",
        entries=[
            Entry("./usr", "dir"),
            Entry("./usr/a", data=b"same"),
            Entry("./usr/b", "hardlink", link="./usr/a"),
        ],
    )
    tree = Tree()
    tree.add_package("h", expanded(tmp_path, pkg), Trimmer(Trim()), None)
    assert tree.get("usr/b").read() == b"same"  # type: ignore[union-attr]


def test_levels_status_d_accounts_and_bundle(tmp_path: Path) -> None:
    certs = Pkg(
        "ca-certificates",
        entries=[
            Entry(
                "./usr/share/ca-certificates/mozilla/B.crt",
                data=b"-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----",
            ),
            Entry(
                "./usr/share/ca-certificates/mozilla/A.crt",
                data=b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n",
            ),
        ],
    )
    low = Spec(packages=["base-files", "ca-certificates"])
    high = Spec(
        packages=["base-files", "ca-certificates", "x"],
        accounts=Accounts(users=[{"name": "app", "uid": 1000}]),
    )
    plans, tree = assemble(
        [
            LevelInput(
                "low",
                low,
                [("base-files", expanded(tmp_path, MERGED)), ("ca-certificates", expanded(tmp_path, certs))],
            ),
            LevelInput("high", high, []),
        ],
        "amd64",
        "debian13",
    )
    status = tree.get("var/lib/dpkg/status.d/base-files")
    assert status is not None and status.read() == MERGED.control().encode()
    md5 = tree.get("var/lib/dpkg/status.d/base-files.md5sums")
    assert md5 is not None and md5.read().splitlines() == [  # what is left after trimming
        hashlib.md5(b"13.0\n").hexdigest().encode() + b"  etc/debian_version",
        hashlib.md5(b"ID=debian\nVERSION_ID=13\n").hexdigest().encode() + b"  usr/lib/os-release",
        hashlib.md5(b"GPL\n").hexdigest().encode() + b"  usr/share/doc/base-files/copyright",
    ]
    assert tree.get("etc/passwd").read() == (  # type: ignore[union-attr]
        b"root:x:0:0:root:/root:/sbin/nologin\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        b"app:x:1000:1000:app:/home/app:/sbin/nologin\n"
    )
    assert b"nonroot:x:65532:\n" in tree.get("etc/group").read()  # type: ignore[union-attr]
    assert b"app:x:1000:\n" in tree.get("etc/group").read()  # type: ignore[union-attr]
    home = tree.get("home/nonroot")
    assert home is not None and (home.mode, home.uid, home.gid) == (0o700, 65532, 65532)
    assert tree.get("root").mode == 0o700  # type: ignore[union-attr]
    assert tree.get("tmp").mode == 0o1777  # type: ignore[union-attr]
    assert tree.get("etc/localtime").link == "/usr/share/zoneinfo/Etc/UTC"  # type: ignore[union-attr]
    bundle = tree.get(system.BUNDLE).read()  # type: ignore[union-attr]
    assert bundle.index(b"\nA\n") < bundle.index(b"\nB\n") and bundle.endswith(b"-----\n")
    # The single certificates are trimmed once bundled; no whiteouts for files that never left a layer.
    assert tree.get("usr/share/ca-certificates/mozilla/A.crt") is None
    assert None not in plans[0].entries.values()
    # The high level changed only what it altered: passwd, group and the new home.
    assert set(plans[1].entries) == {"etc/passwd", "etc/group", "home/app"}


def _dirs(*paths: str) -> list[Entry]:
    return [Entry(f"./{p}", "dir") for p in paths]


def _empty_dirs(tree: Tree) -> set[str]:
    parents = {p.rpartition("/")[0] for p in tree.nodes if p}
    return {p for p, n in tree.nodes.items() if n.kind == "5" and p not in parents}


def _md5sums_lines(tree: Tree) -> dict[str, list[str]]:
    out = {}
    for path in tree.children(system.STATUS_D):
        if path.endswith(".md5sums"):
            out[path.rpartition("/")[2]] = [ln[34:] for ln in tree.nodes[path].read().decode().splitlines()]
    return out


def test_md5sums_name_only_files_in_the_image_and_trimming_leaves_no_empty_dirs(tmp_path: Path) -> None:
    """The bundled certificates and trimmed translations are not claimed by md5sums, and
    the directories they leave empty go; a directory a package ships empty stays."""
    pem = b"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
    certs = Pkg(
        "ca-certificates",
        entries=[
            *_dirs("usr", "usr/sbin", "usr/share", "usr/share/ca-certificates"),
            *_dirs("usr/share/ca-certificates/mozilla", "usr/local", "usr/local/share"),
            *_dirs("usr/local/share/ca-certificates", "usr/share/doc", "usr/share/doc/ca-certificates"),
            *_dirs("usr/share/locale", "usr/share/locale/de", "usr/share/locale/de/LC_MESSAGES"),
            Entry("./usr/share/ca-certificates/mozilla/A.crt", data=pem),
            Entry("./usr/share/ca-certificates/mozilla/B.crt", data=pem.replace(b"A", b"B")),
            Entry("./usr/sbin/update-ca-certificates", data=b"#!/bin/sh\n", mode=0o755),
            Entry("./usr/share/locale/de/LC_MESSAGES/ca.mo", data=b"mo"),
            Entry("./usr/share/doc/ca-certificates/copyright", data=b"MPL\n"),
            Entry("./usr/share/doc/ca-certificates/README.Debian", data=b"readme"),
        ],
    )
    tool = Pkg(
        "tool",
        entries=[
            *_dirs("usr", "usr/bin", "usr/share", "usr/share/tool", "usr/share/tool/extra"),
            Entry("./usr/bin/tool", data=b"tool"),
            Entry("./usr/share/tool/extra/big.dat", data=b"big"),
            Entry("./usr/share/tool/kept.dat", data=b"kept"),
        ],
    )
    spec = Spec(trim=Trim(paths=["/usr/share/tool/extra/**"]))
    plans, tree = assemble(
        [
            LevelInput(
                "low",
                spec,
                [("base-files", expanded(tmp_path, MERGED)), ("ca-certificates", expanded(tmp_path, certs))],
            ),
            LevelInput("high", spec, [("tool", expanded(tmp_path, tool))]),
        ],
        "amd64",
        "debian13",
    )
    lines = _md5sums_lines(tree)
    assert lines["ca-certificates.md5sums"] == [
        "usr/sbin/update-ca-certificates",
        "usr/share/doc/ca-certificates/copyright",
    ]
    assert lines["tool.md5sums"] == ["usr/bin/tool", "usr/share/tool/kept.dat"]
    for name, paths in lines.items():
        for path in paths:
            node = tree.get(tree.resolve(path))
            assert node is not None and node.kind == "0", f"{name} lists /{path}, which the image lacks"
    # Emptied by trimming: gone (parents too, when they held nothing else).
    for gone in (
        "usr/share/ca-certificates",
        "usr/share/ca-certificates/mozilla",
        "usr/share/locale",
        "usr/share/tool/extra",
        "usr/share/man",
    ):
        assert tree.get(gone) is None, gone
    assert tree.get("usr/share/tool") is not None and tree.get("usr/share/doc/ca-certificates") is not None
    # What is empty is what was made empty on purpose: shipped so, or generated.
    assert _empty_dirs(tree) == {"usr/local/share/ca-certificates", "home/nonroot", "root", "tmp"}
    # Nothing that never reached a layer is whited out.
    assert all(None not in plan.entries.values() for plan in plans)


def test_os_release_is_generated_when_no_package_ships_one(tmp_path: Path) -> None:
    _, tree = assemble([LevelInput("x", Spec(distro="debian12"), [])], "amd64", "debian12")
    text = tree.get("usr/lib/os-release").read()  # type: ignore[union-attr]
    assert b"ID=debian\n" in text and b'VERSION_ID="12"' in text
    assert tree.get("etc/os-release").link == "../usr/lib/os-release"  # type: ignore[union-attr]


# -- ld.so.cache ----------------------------------------------------------------------------------


def _lib_tree(tmp_path: Path) -> Tree:
    libc = Pkg(
        "libc6",
        entries=[
            Entry("./etc", "dir"),
            Entry("./etc/ld.so.conf.d", "dir"),
            Entry(
                "./etc/ld.so.conf.d/x86_64-linux-gnu.conf",
                data=b"# multiarch\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n",
            ),
            Entry("./etc/ld.so.conf", data=b"include /etc/ld.so.conf.d/*.conf\n"),
            Entry("./usr", "dir"),
            Entry("./usr/lib", "dir"),
            Entry("./lib", "symlink", link="usr/lib"),
            Entry("./usr/lib/x86_64-linux-gnu", "dir"),
            Entry("./usr/lib/x86_64-linux-gnu/libz.so.1.3.1", data=host_lib("libz.so.1")),
            Entry("./usr/lib/x86_64-linux-gnu/libz.so.1", "symlink", link="libz.so.1.3.1"),
            Entry("./usr/lib/x86_64-linux-gnu/libc.so.6", data=host_lib("libc.so.6")),
            # A linker script named like a library is not an ELF object: not cached.
            Entry("./usr/lib/x86_64-linux-gnu/libfake.so.2", data=b"GROUP ( libc.so.6 )\n"),
        ],
    )
    tree = Tree()
    tree.add_package("libc6", expanded(tmp_path, libc), Trimmer(Trim()), None)
    return tree


def test_ld_so_cache_round_trip_and_host_ldconfig_reads_it(tmp_path: Path) -> None:
    tree = _lib_tree(tmp_path)
    entries = ldcache.cache_entries(tree, "amd64")
    data = ldcache.write_cache(entries)
    back = ldcache.read_cache(data)
    assert {e.key for e in back} == {"libz.so.1", "libc.so.6"}
    z = ldcache.lookup(back, "libz.so.1")
    assert z is not None and z.value == "/lib/x86_64-linux-gnu/libz.so.1" and z.flags == 0x0303
    assert ldcache.lookup(back, "libfake.so.2") is None
    cache_file = tmp_path / "ld.so.cache"
    cache_file.write_bytes(data)
    out = subprocess.run(
        ["/sbin/ldconfig", "-p", "-C", str(cache_file)], capture_output=True, text=True, check=True
    )
    assert "2 libs found" in out.stdout
    assert "libz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1" in out.stdout


def test_ld_so_cache_rejects_damaged_files() -> None:
    good = ldcache.write_cache([ldcache.CacheEntry("liba.so.1", "/lib/liba.so.1", 0x303)])
    for bad in (good[:10], b"X" * len(good), good[:-5]):
        with pytest.raises(ldcache.CacheFormatError):
            ldcache.read_cache(bad)


def test_libcmp_compares_numbers_as_numbers() -> None:
    assert ldcache.libcmp("libfoo.so.10", "libfoo.so.9") > 0
    assert ldcache.libcmp("libfoo.so.1", "libfoo.so.1") == 0
    assert ldcache.libcmp("liba.so", "libb.so") < 0
    assert ldcache.libcmp("libx.so", "libx.so.1") < 0


@given(
    st.lists(
        st.from_regex(r"lib[a-z]{1,6}[0-9]{0,3}\.so(\.[0-9]{1,3}){0,2}", fullmatch=True),
        min_size=1,
        max_size=40,
        unique=True,
    )
)
def test_every_written_key_is_found_by_the_linkers_search(keys: list[str]) -> None:
    entries = [ldcache.CacheEntry(k, f"/lib/{k}", 0x303) for k in keys]
    back = ldcache.read_cache(ldcache.write_cache(entries))
    ordered = [e.key for e in back]
    assert ordered == sorted(ordered, key=functools.cmp_to_key(lambda a, b: ldcache.libcmp(b, a)))
    for k in keys:
        found = ldcache.lookup(back, k)
        assert found is not None and found.value == f"/lib/{k}"


# -- busybox --------------------------------------------------------------------------------------


def test_busybox_applets_are_read_from_the_name_table() -> None:
    names = ["[", "[[", "ash", "cat", "ls", "mkdir", "sh", "sleep", "tar", "vi", "wget"]
    binary = b"\x7fELF" + b"\x01" * 50 + b"\0".join(n.encode() for n in names) + b"\0\0\xff\xfe"
    assert system.busybox_applets(binary) == names
    with pytest.raises(Exception, match="no applet table"):
        system.busybox_applets(b"\x7fELF not busybox")
