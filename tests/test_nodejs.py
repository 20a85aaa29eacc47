"""Node.js from release archives: a release server generated on 127.0.0.1 (index.json,
SHASUMS256.txt signed with a generated key, archives), trusted through the spec's
nodejs.keyring and nodejs.signers; the Debian side from a generated repository.
What is locked, what the image holds, and every way the release can be wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from debrepo import Key, Server
from noderelease import archive, made_up_abi, node_binary, write_release
from test_apps import addon, config, node_project
from test_build import PACKAGES, rootfs
from test_cli import MakeRepo, assert_one_line_error


def distill(*args: str, cwd: Path, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "XDG_CACHE_HOME": str(cache), **env}
    for name in ("DISTILL_MIRROR", "DISTILL_NODEJS_MIRROR", "DISTILL_NODEJS_KEYRING"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def build_locked(work: Path, cache: Path, releases: Server) -> subprocess.CompletedProcess[str]:
    return distill(
        "build",
        "app.yaml",
        "--locked",
        "-o",
        "out.oci",
        "--nodejs-mirror",
        releases.url,
        cwd=work,
        cache=cache,
    )


def file_in(layout: Path, path: str) -> bytes | None:
    """The bytes of ``path`` in the top-most layer of a one-platform layout that has it."""
    index = json.loads((layout / "index.json").read_text())
    blob = layout / "blobs" / "sha256"
    manifest = json.loads((blob / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    found = None
    for layer in manifest["layers"]:
        with tarfile.open(blob / layer["digest"].split(":")[1], "r:gz") as tf:
            for m in tf.getmembers():
                if m.name.removeprefix("./") == path and m.isfile():
                    found = tf.extractfile(m).read()  # type: ignore[union-attr]
    return found


TRIM = """trim:
  paths: [/nodejs/lib/node_modules/**, /nodejs/bin/npm, /nodejs/bin/npx, /nodejs/include/**, /nodejs/share/**]
"""


@pytest.fixture
def setup(make_repo: MakeRepo, key: Key, other_key: Key, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(work dir, release root, release server): releases 22.1.0, 22.3.0 and 24.0.0 signed
    by ``other_key`` (the "Node.js releaser" here), a spec asking for 22 that trusts it."""
    debian, _ = make_repo({"stable": PACKAGES})
    root = tmp_path / "dist"
    for v in ("22.1.0", "22.3.0", "24.0.0"):
        write_release(root, v, other_key, dirs=v != "22.3.0")  # 22.3.0's archive lists no directories
    releases = Server(root)
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.yaml").write_text(
        f"name: node22\ndistro: debian13\narchs: [amd64]\nsources:\n  - url: {debian.url}\n    suites: [stable]\n"
        f"keyring: [{key.keyring}]\npackages: [base-files]\n"
        f"nodejs:\n  version: '22'\n  keyring: [{other_key.keyring}]\n  signers: ['{other_key.fingerprint}']\n"
        f"entrypoint: [/nodejs/bin/node]\n{TRIM}"
    )
    yield work, root, releases
    releases.close()


def test_locks_the_newest_release_of_the_major_and_builds_it_under_nodejs(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from distill.oci import read

    work, root, releases = setup
    cache = tmp_path / "cache"
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    locked = json.loads((work / "app.lock.json").read_text())["archs"]["amd64"]["archives"]
    shasums = (root / "v22.3.0" / "SHASUMS256.txt").read_text().split()
    assert locked == [
        {
            "name": "nodejs",
            "version": "22.3.0",
            "file": "node-v22.3.0-linux-x64.tar.xz",
            "sha256": shasums[shasums.index("node-v22.3.0-linux-x64.tar.xz") - 1],
            "shasums_sha256": __import__("hashlib")
            .sha256((root / "v22.3.0" / "SHASUMS256.txt").read_bytes())
            .hexdigest(),
            "layer": "node22",
        }
    ]
    # The mirror from the environment this time; the lock decides the version.
    proc = distill("build", "app.yaml", "--locked", "-o", "out.oci", cwd=work, cache=cache,
                   DISTILL_NODEJS_MIRROR=releases.url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tree, _ = read.image_tree(str(work / "out.oci"), "amd64")
    node = tree.get("nodejs/bin/node")
    assert (
        node is not None and file_in(work / "out.oci", "nodejs/bin/node") == b"#!generated node 22.3.0 x64\n"
    )
    assert (node.mode, node.uid, node.gid) == (0o755, 0, 0)  # the builder's 1000 and group write are gone
    for d in ("nodejs", "nodejs/bin"):  # made although the archive lists no directories
        made = tree.get(d)
        assert made is not None and made.kind == "5" and made.mode == 0o755, d
    assert tree.get("nodejs/LICENSE") is not None
    for gone in (
        "nodejs/bin/npm",
        "nodejs/bin/npx",
        "nodejs/lib/node_modules",
        "nodejs/include",
        "nodejs/share",
    ):
        assert tree.get(gone) is None, gone
    # Not a Debian package: no status.d record claims it.
    assert not [p for p in tree.nodes if p.startswith("var/lib/dpkg/status.d/nodejs")]
    # Cached by its SHA256: a rebuild needs no mirror at all.
    releases.close()
    proc = distill("build", "app.yaml", "--locked", "-o", "again.oci", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert (work / "again.oci" / "index.json").read_bytes() == (work / "out.oci" / "index.json").read_bytes()
    # distill cache knows the archives: prune keeps what a lock names, verify hashes them.
    (archive_file,) = (cache / "distill" / "archives").iterdir()
    proc = distill("cache", "prune", "--max-size", "0", "--keep-lock", "app.lock.json", cwd=work, cache=cache)
    assert proc.returncode == 0 and archive_file.exists(), proc.stderr
    archive_file.write_bytes(archive_file.read_bytes()[:-1] + b"\0")
    proc = distill("cache", "verify", cwd=work, cache=cache)
    assert proc.returncode == 1 and "release archive does not match its SHA256" in proc.stdout + proc.stderr
    assert not archive_file.exists()


def test_keyring_from_the_environment_and_an_exact_version(setup, tmp_path: Path, other_key: Key) -> None:  # type: ignore[no-untyped-def]
    work, _, releases = setup
    spec = (work / "app.yaml").read_text().replace("version: '22'", "version: '24.0.0'")
    spec = spec.replace(f"  keyring: [{other_key.keyring}]\n", "")
    (work / "app.yaml").write_text(spec)
    cache = tmp_path / "cache"
    proc = distill("lock", "app.yaml", cwd=work, cache=cache, DISTILL_NODEJS_MIRROR=releases.url)
    assert_one_line_error(proc, "no keyring holds their keys")
    assert "DISTILL_NODEJS_KEYRING" in proc.stderr
    proc = distill("lock", "app.yaml", cwd=work, cache=cache, DISTILL_NODEJS_MIRROR=releases.url,
                   DISTILL_NODEJS_KEYRING=str(other_key.keyring))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        json.loads((work / "app.lock.json").read_text())["archs"]["amd64"]["archives"][0]["version"]
        == "24.0.0"
    )


def test_a_key_that_is_not_pinned_is_not_trusted(setup, tmp_path: Path, other_key: Key) -> None:  # type: ignore[no-untyped-def]
    """The keyring holds the key that signed, but only pinned release keys and the spec's
    signers count: without signers the generated key is refused."""
    work, _, releases = setup
    spec = (work / "app.yaml").read_text().replace(f"  signers: ['{other_key.fingerprint}']\n", "")
    (work / "app.yaml").write_text(spec)
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, f"is signed by {other_key.fingerprint}, which is not a Node.js release key")


def test_signed_by_another_key_altered_list_and_wrong_archive(  # type: ignore[no-untyped-def]
    setup, tmp_path: Path, key: Key, other_key: Key
) -> None:
    work, root, releases = setup
    cache = tmp_path / "cache"
    # 22.5.0 signed by a key the keyring does not hold.
    write_release(root, "22.5.0", key)
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert_one_line_error(proc, "v22.5.0/SHASUMS256.txt is not signed by any key in")
    # Re-signed by the trusted key, then the list altered after signing.
    write_release(root, "22.5.0", other_key)
    sums = root / "v22.5.0" / "SHASUMS256.txt"
    sums.write_bytes(sums.read_bytes().replace(b"  node-", b"  node-", 1)[:-1] + b"\n\n")
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert_one_line_error(proc, "v22.5.0/SHASUMS256.txt has a BAD signature")
    # A correctly signed list, but the archive on the mirror is not the one it lists.
    write_release(
        root,
        "22.5.0",
        other_key,
        listed={"node-v22.5.0-linux-x64.tar.xz": archive("22.5.0", "x64", {"bin/node": b"x"})},
    )
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    proc = build_locked(work, cache, releases)
    assert_one_line_error(proc, "node-v22.5.0-linux-x64.tar.xz has SHA256")
    assert not (work / "out.oci").exists()
    assert not list((cache / "distill" / "archives").glob("*"))  # nothing unverified was cached


def test_no_mirror_an_unreachable_one_and_an_edited_lock(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    work, _, releases = setup
    cache = tmp_path / "cache"
    proc = distill("lock", "app.yaml", cwd=work, cache=cache)
    assert_one_line_error(proc, "no mirror is set")
    assert "--nodejs-mirror" in proc.stderr
    proc = distill("lock", "app.yaml", "--nodejs-mirror", "http://127.0.0.1:9/dist", cwd=work, cache=cache,
                   DISTILL_HTTP_TIMEOUT="5")  # fmt: skip
    assert_one_line_error(proc, "http://127.0.0.1:9/dist/index.json")
    assert "--nodejs-mirror" in proc.stderr
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((work / "app.lock.json").read_text())
    lock["archs"]["amd64"]["archives"][0]["file"] = "../../etc/passwd"
    (work / "app.lock.json").write_text(json.dumps(lock))
    proc = build_locked(work, cache, releases)
    assert_one_line_error(proc, "archs.amd64.archives[0].file: not a Node.js linux archive name")
    good = (work / "app.yaml").read_text()
    (work / "app.yaml").write_text(good.replace("version: '22'", "version: 'latest'"))
    proc = distill("lock", "app.yaml", cwd=work, cache=cache)
    assert_one_line_error(proc, "nodejs.version")
    (work / "app.yaml").write_text(good.replace("  version: '22'\n", ""))
    proc = distill("lock", "app.yaml", "--nodejs-mirror", releases.url, cwd=work, cache=cache)
    assert_one_line_error(proc, "nodejs: has no version")


# -- app kind node on a release archive's Node.js ------------------------------------------


def build_app(src: Path, cache: Path, releases: Server, out: str = "img") -> subprocess.CompletedProcess[str]:
    return distill("build", "app.yaml", "-o", out, "--nodejs-mirror", releases.url, cwd=src, cache=cache)


def test_node_app_runs_the_archives_node_with_the_abi_its_header_declares(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The lock pins node 22.3.0, whose archive declares NODE_MODULE_VERSION 522 (made up: no
    table has it) in include/node/node_version.h, which the image itself leaves out."""
    work, _, releases = setup
    cache = tmp_path / "cache"
    src = work / "svc"
    abi = made_up_abi("22.3.0")
    packages = {
        "left-pad": ({"index.js": b"module.exports = 1;\n"}, {"engines": {"node": ">=24"}}),
        "napi-addon": ({"build/Release/a.node": addon(tmp_path, "napi_register_module_v1")}, {}),
        "abi-addon": ({"build/Release/b.node": addon(tmp_path, f"node_register_module_v{abi}")}, {}),
    }
    node_project(src, packages)
    (src / "app.yaml").write_text("name: svc\nfrom: ../app.yaml\napp: {kind: node}\n")
    proc = build_app(src, cache, releases)
    assert proc.returncode == 0, proc.stderr
    assert "warning: left-pad@1.0.0 wants node '>=24', the image has node 22.3.0" in proc.stderr
    c = config(src / "img")
    assert c["Entrypoint"] == ["/nodejs/bin/node"] and c["Cmd"] == ["/app/server.js"]  # Google's path
    fs = rootfs(src / "img")
    assert fs["nodejs/bin/node"][1] == b"#!generated node 22.3.0 x64\n" and "usr/bin/node" not in fs
    assert "nodejs/include/node/node_version.h" not in fs  # trimmed: read from the cached archive
    for name in ("napi-addon/build/Release/a.node", "abi-addon/build/Release/b.node"):
        assert f"app/node_modules/{name}" in fs
    node_project(
        src, {**packages, "old-addon": ({"b.node": addon(tmp_path, "node_register_module_v127")}, {})}
    )
    proc = build_app(src, cache, releases, "img2")
    assert_one_line_error(
        proc,
        "node addon /app/node_modules/old-addon/b.node is built for Node module ABI 127, but the image's "
        f"node 22.3.0 has ABI {abi}",
    )
    assert not (src / "img2").exists()


def test_node_app_on_an_archive_that_does_not_declare_its_abi(setup, tmp_path: Path, other_key: Key) -> None:  # type: ignore[no-untyped-def]
    """No node_version.h: a Node-API addon still fits; one built for an ABI is refused in one
    line saying why the image's ABI is unknown (never guessed from the version)."""
    work, root, releases = setup
    bare = archive("22.5.0", "x64", {"bin/node": b"#!node\n", "LICENSE": b"MIT\n"})
    write_release(root, "22.5.0", other_key, {"amd64": bare})
    spec = work / "app.yaml"
    spec.write_text(spec.read_text().replace("version: '22'", "version: '22.5.0'"))
    src = work / "svc"
    napi = {"napi-addon": ({"a.node": addon(tmp_path, "napi_register_module_v1")}, {})}
    node_project(src, napi)
    (src / "app.yaml").write_text("name: svc\nfrom: ../app.yaml\napp: {kind: node}\n")
    proc = build_app(src, tmp_path / "cache", releases)
    assert proc.returncode == 0, proc.stderr
    node_project(src, {**napi, "old-addon": ({"b.node": addon(tmp_path, "node_register_module_v127")}, {})})
    proc = build_app(src, tmp_path / "cache", releases, "img2")
    assert_one_line_error(
        proc,
        "is built for Node module ABI 127, and the image's Node module ABI is unknown: "
        "node-v22.5.0-linux-x64.tar.xz has no include/node/node_version.h",
    )


def test_node_app_on_an_image_reads_what_its_node_binary_says(setup, tmp_path: Path, other_key: Key) -> None:  # type: ignore[no-untyped-def]
    """from: an image with node only at /nodejs/bin/node and no headers (Google's layout):
    the ABI comes from the build configuration compiled into the binary (process.config),
    the version from its headersUrl, read as the layers stream by (here across a chunk
    boundary). A binary that says neither, and an image without node, are one line each."""
    work, root, releases = setup
    cache = tmp_path / "cache"
    spec = work / "app.yaml"
    flavor = spec.read_text()
    proc = distill(
        "build", "app.yaml", "-o", "plain.oci", "--nodejs-mirror", releases.url, cwd=work, cache=cache
    )
    assert proc.returncode == 0, proc.stderr
    files = {"bin/node": node_binary("22.7.0", 622), "include/node/node.h": b"/* */\n", "LICENSE": b"MIT\n"}
    write_release(root, "22.7.0", other_key, {"amd64": archive("22.7.0", "x64", files)})
    spec.write_text(flavor.replace("version: '22'", "version: '22.7.0'"))
    proc = distill(
        "build", "app.yaml", "-o", "base.oci", "--nodejs-mirror", releases.url, cwd=work, cache=cache
    )
    assert proc.returncode == 0, proc.stderr
    (work / "bare.yaml").write_text(flavor.split("nodejs:")[0].replace("name: node22", "name: bare"))
    proc = distill("build", "bare.yaml", "-o", "bare.oci", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    src = work / "svc"
    packages = {
        "left-pad": ({"index.js": b"1\n"}, {"engines": {"node": ">=24"}}),
        "abi-addon": ({"b.node": addon(tmp_path, "node_register_module_v622")}, {}),
    }
    node_project(src, packages)
    for base in ("base", "plain", "bare"):
        (src / f"{base}.yaml").write_text(
            f"name: svc\nfrom: oci:../{base}.oci\narchs: [amd64]\napp: {{kind: node}}\n"
        )
    proc = distill("build", "base.yaml", "-o", "img", cwd=src, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "warning: left-pad@1.0.0 wants node '>=24', the image has node 22.7.0" in proc.stderr
    c = config(src / "img")
    assert c["Entrypoint"] == ["/nodejs/bin/node"] and c["Cmd"] == ["/app/server.js"]
    old = {**packages, "old-addon": ({"o.node": addon(tmp_path, "node_register_module_v127")}, {})}
    node_project(src, old)
    proc = distill("build", "base.yaml", "-o", "img2", cwd=src, cache=cache)
    assert_one_line_error(proc, "built for Node module ABI 127, but the image's node 22.7.0 has ABI 622")
    proc = distill("build", "plain.yaml", "-o", "img3", cwd=src, cache=cache)
    assert_one_line_error(
        proc, "ABI is unknown: no Node module ABI (node_module_version) found in its /nodejs/bin/node"
    )
    proc = distill("build", "bare.yaml", "-o", "img4", cwd=src, cache=cache)
    assert_one_line_error(
        proc, "has no Debian nodejs (libnode) and no node at /nodejs/bin/node, /usr/local/bin/node"
    )


def test_the_pinned_release_keys_are_the_node_js_releasers() -> None:
    from distill.upstream.nodejs import RELEASE_KEYS

    assert len(RELEASE_KEYS) == 29
    assert "C82FA3AE1CBEDC6BE46B9360C43CEC45C17AB93C" in RELEASE_KEYS  # Richard Lau, an active releaser
    assert all(len(k) == 40 and k == k.upper() for k in RELEASE_KEYS)
