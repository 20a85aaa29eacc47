"""Application images on a generated, signed repository served on 127.0.0.1: binaries
(checked against the image's libraries), python and node code layers, node_modules
from a lockfile, Jib-style java layers, the Java truststore, and bad input.

Binaries and addons are compiled here with the host's C compiler; jars are written
with zipfile; npm packages are tarballs referenced by the lockfile (``file:``)."""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from debrepo import Entry, Key, Pkg
from distill.app import elf
from distill.assemble import jks
from test_assemble import MERGED, host_lib
from test_build import BUSYBOX, build, manifests, rootfs
from test_cli import MakeRepo, assert_one_line_error, run

TRIPLE = "x86_64-linux-gnu"
LIBC = Pkg(
    "libc6",
    "2.41-1",
    entries=[
        Entry("./etc/ld.so.conf.d/x86_64-linux-gnu.conf", data=f"/usr/lib/{TRIPLE}\n".encode()),
        Entry("./usr/lib/x86_64-linux-gnu", "dir"),
        Entry(f"./usr/lib/{TRIPLE}/libc.so.6", data=host_lib("libc.so.6")),
        Entry(f"./usr/lib/{TRIPLE}/ld-linux-x86-64.so.2", data=b"\x7fELF interpreter"),
        Entry("./usr/lib64", "dir"),
        Entry("./usr/lib64/ld-linux-x86-64.so.2", "symlink", link=f"../lib/{TRIPLE}/ld-linux-x86-64.so.2"),
        Entry("./lib64", "symlink", link="usr/lib64"),
    ],
)


def runtime_pkgs(ca_pem: bytes) -> list[Pkg]:
    return [
        Pkg("base-files", "13.8", arch="all", entries=MERGED.entries),
        LIBC,
        Pkg("ca-certificates", "1", arch="all", entries=[Entry("./usr/share/ca-certificates/mozilla/Test_CA.crt", data=ca_pem)]),
        Pkg("libpython3.13-minimal", "3.13.5-2", depends="libc6", entries=[Entry("./usr/bin/python3", data=b"py", mode=0o755)]),
        Pkg("libnode115", "20.19.2", depends="libc6"),
        Pkg("busybox-static", "1.37", arch="all", entries=[Entry("./usr/bin/busybox", data=BUSYBOX, mode=0o755)]),
        Pkg("nodejs", "20.19.2", depends="libnode115", entries=[Entry("./usr/bin/node", data=b"node", mode=0o755)]),
        Pkg(
            "openjdk",
            "21",
            depends="libc6, ca-certificates",
            entries=[
                Entry("./usr/lib/jvm/jdk/bin/java", data=b"java", mode=0o755),
                Entry("./usr/lib/jvm/jdk/lib/security/cacerts", "symlink", link="/etc/ssl/certs/java/cacerts"),
                Entry("./usr/bin/java", "symlink", link="/usr/lib/jvm/jdk/bin/java"),
            ],
        ),
    ]  # fmt: skip


def cc(tmp: Path, name: str, source: str, *flags: str) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(src), *flags], check=True, capture_output=True)
    return out


HELLO = '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n'


@pytest.fixture(scope="session")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    d = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "k"), "-out", str(d / "c"),
         "-days", "2", "-subj", "/CN=distill truststore test"],
        check=True, capture_output=True,
    )  # fmt: skip
    return (d / "c").read_bytes()


@pytest.fixture
def work(make_repo: MakeRepo, key: Key, tmp_path: Path, ca_pem: bytes) -> Path:
    server, _ = make_repo({"stable": runtime_pkgs(ca_pem)})
    work = tmp_path / "work"
    work.mkdir()
    head = f"distro: debian13\narchs: [amd64]\nsources:\n  - url: {server.url}\n    suites: [stable]\nkeyring: [{key.keyring}]\n"
    (work / "bare.yaml").write_text(f"name: bare\n{head}packages: [base-files]\n")
    (work / "glibc.yaml").write_text("name: glibc\nextends: bare.yaml\npackages: [libc6]\n")
    (work / "py.yaml").write_text("name: py\nextends: glibc.yaml\npackages: [libpython3.13-minimal]\n")
    (work / "node.yaml").write_text("name: node\nextends: glibc.yaml\npackages: [nodejs]\n")
    (work / "java.yaml").write_text("name: java\nextends: glibc.yaml\npackages: [openjdk]\n")
    return work


def layer_digests(layout: Path) -> list[str]:
    return [layer["digest"] for layer in manifests(layout)["amd64"]["manifest"]["layers"]]


def config(layout: Path) -> dict:  # type: ignore[type-arg]
    return manifests(layout)["amd64"]["config"]["config"]  # type: ignore[no-any-return]


# -- binaries ------------------------------------------------------------------------------


def test_elf_inspection_picks_the_flavor(tmp_path: Path) -> None:
    static = elf.inspect_elf(cc(tmp_path, "static", HELLO, "-static"), "t")
    dynamic = elf.inspect_elf(cc(tmp_path, "dynamic", HELLO), "t")
    assert static.static and static.arch == "amd64" and elf.flavor_for(static) == "static"
    assert not dynamic.static and dynamic.interpreter and "libc.so.6" in dynamic.needed
    assert elf.flavor_for(dynamic) == "base"
    cxx = elf.ElfInfo(
        "x", "amd64", "/lib64/ld-linux-x86-64.so.2", ["libstdc++.so.6", "libm.so.6", "libc.so.6"]
    )
    assert elf.flavor_for(cxx) == "cc"
    with pytest.raises(Exception, match="not a readable ELF"):
        elf.inspect_elf(tmp_path / "static.c", "t")


def test_binary_app_lands_read_only_and_runs_as_nonroot(work: Path, tmp_path: Path) -> None:
    shutil.copy(cc(tmp_path, "hello", HELLO), work / "hello")
    (work / "app.yaml").write_text(
        "name: hello\nfrom: glibc.yaml\napp: {kind: binary, source: hello, args: [--port, '80']}\n"
    )
    _, out = build(work, tmp_path / "c", "app.yaml", "-o", "img")
    assert "3 layers (bare, glibc, app binary)" in out
    c = config(work / "img")
    assert c["User"] == "65532" and c["WorkingDir"] == "/app"
    assert c["Entrypoint"] == ["/app/hello"] and c["Cmd"] == ["--port", "80"]
    fs = rootfs(work / "img")
    info, data = fs["app/hello"]
    assert (info.mode, info.uid, info.gid) == (0o755, 0, 0) and data == (work / "hello").read_bytes()
    # The static image's variant rules do not apply: nonroot is the app default even for "latest";
    # an explicit user wins.
    (work / "root.yaml").write_text(
        'name: hello\nfrom: glibc.yaml\nuser: "0"\napp: {kind: binary, source: hello}\n'
    )
    build(work, tmp_path / "c", "root.yaml", "-o", "img-root")
    assert config(work / "img-root")["User"] == "0"


def test_dynamic_binary_on_an_image_without_libc_is_refused(work: Path, tmp_path: Path) -> None:
    shutil.copy(cc(tmp_path, "hello", HELLO), work / "hello")
    (work / "app.yaml").write_text("name: hello\nfrom: bare.yaml\napp: {kind: binary, source: hello}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "hello is dynamically linked")
    assert "use from: base" in proc.stderr and not (work / "img").exists()


def test_binary_needing_a_library_the_image_lacks_names_it(work: Path, tmp_path: Path) -> None:
    cc(tmp_path, "libfoo.so", "int foo(void){return 1;}\n", "-shared", "-fPIC", "-Wl,-soname,libfoo.so.1")
    main = "int foo(void);\nint main(void){return foo();}\n"
    shutil.copy(cc(tmp_path, "usesfoo", main, f"-L{tmp_path}", "-l:libfoo.so"), work / "usesfoo")
    (work / "app.yaml").write_text("name: foo\nfrom: glibc.yaml\napp: {kind: binary, source: usesfoo}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "usesfoo needs libfoo.so.1, which the image lacks")


def test_load_into_an_engine_that_cannot_is_one_line(work: Path, tmp_path: Path) -> None:
    shutil.copy(cc(tmp_path, "hello", HELLO, "-static"), work / "hello")
    (work / "app.yaml").write_text("name: hello\nfrom: bare.yaml\napp: {kind: binary, source: hello}\n")
    # Docker's CLI may be installed here, but no engine runs: either way one line, exit 2.
    proc = run("build", "app.yaml", "--load", "docker", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "--load: docker")


def test_missing_source_and_wrong_fields_are_one_line_errors(work: Path, tmp_path: Path) -> None:
    cases = {
        "app: {kind: binary, source: nowhere}": "app.source",
        "app: {kind: python, source: ../..}": "outside the spec's directory",
        "app: {kind: binary, source: bare.yaml, main_class: x.Y}": "main_class is for kind java",
        "app: {kind: ruby}": "app.kind",
        "from: glibc.yaml\nextends: bare.yaml\napp: {kind: binary, source: bare.yaml}": "either 'from' or 'extends'",
        "from: glibc.yaml\napp: {kind: binary, source: bare.yaml}": "not a readable ELF",
    }
    for i, (body, message) in enumerate(cases.items()):
        (work / f"bad{i}.yaml").write_text(f"name: bad\n{body}\n")
        proc = run("build", f"bad{i}.yaml", "-o", "img", cwd=work, cache=tmp_path / "c")
        assert_one_line_error(proc, message)


# -- python --------------------------------------------------------------------------------


def test_python_code_change_rebuilds_only_the_code_layer(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    (src / "myapp").mkdir(parents=True)
    (src / "myapp" / "__main__.py").write_text("print('v1')\n")
    (src / "myapp" / "__pycache__").mkdir()
    (src / "myapp" / "__pycache__" / "x.pyc").write_bytes(b"stale")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    (src / "notes.tmp").write_text("scratch\n")
    (src / "secrets").mkdir()
    (src / "secrets" / "key").write_text("k\n")
    (src / "myapp" / "secrets").mkdir()
    (src / "myapp" / "secrets" / "ok.txt").write_text("kept: .dockerignore patterns are anchored\n")
    (src / ".dockerignore").write_text("# as Docker reads it\nsecrets\n**/*.md\n!keep.md\n")
    (src / "myapp" / "README.md").write_text("doc\n")
    (src / "app.yaml").write_text(
        "name: svc\nfrom: ../py.yaml\napp: {kind: python, entrypoint: [-m, myapp], exclude: ['*.tmp']}\n"
    )
    cache = tmp_path / "c"
    build(src, cache, "app.yaml", "-o", str(tmp_path / "v1"))
    c = config(tmp_path / "v1")
    assert c["Entrypoint"] == ["/usr/bin/python3", "-m", "myapp"]
    assert "PYTHONPATH=/app" in c["Env"] and "PYTHONDONTWRITEBYTECODE=1" in c["Env"]
    fs = rootfs(tmp_path / "v1")
    assert fs["app/myapp/__main__.py"][1] == b"print('v1')\n" and fs["app/myapp/__main__.py"][0].mode == 0o644
    for left_out in ("app/.git/HEAD", "app/myapp/__pycache__/x.pyc", "app/notes.tmp", "app/app.yaml",
                     "app/secrets/key", "app/myapp/README.md"):  # fmt: skip
        assert left_out not in fs
    assert "app/myapp/secrets/ok.txt" in fs and "app/.dockerignore" in fs
    # An output inside the project (and any OCI layout there) never becomes app code.
    d1, _ = build(src, cache, "app.yaml", "-o", "img")
    d2, _ = build(src, cache, "app.yaml", "-o", "img")
    assert d1 == d2 and not any(p.startswith("app/img") for p in rootfs(src / "img"))
    (src / "myapp" / "__main__.py").write_text("print('v2')\n")
    _, out = build(src, cache, "app.yaml", "-o", str(tmp_path / "v2"))
    assert "1 layers written" in out
    before, after = layer_digests(tmp_path / "v1"), layer_digests(tmp_path / "v2")
    assert len(before) == len(after) == 4
    assert before[:-1] == after[:-1] and before[-1] != after[-1]


def test_python_app_needs_python_in_the_image(work: Path, tmp_path: Path) -> None:
    (work / "main.py").write_text("print(1)\n")
    (work / "app.yaml").write_text("name: x\nfrom: glibc.yaml\napp: {kind: python}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "needs Python in the image")


# -- node ----------------------------------------------------------------------------------


def npm_tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def node_project(root: Path, packages: dict[str, tuple[dict[str, bytes], dict[str, object]]]) -> None:
    (root / "vendor").mkdir(parents=True, exist_ok=True)
    entries: dict[str, object] = {"": {"name": "svc", "version": "1.0.0"}}
    for name, (files, meta) in packages.items():
        data = npm_tarball(files)
        (root / "vendor" / f"{name}.tgz").write_bytes(data)
        entries[f"node_modules/{name}"] = {
            "version": "1.0.0", "resolved": f"file:vendor/{name}.tgz", "integrity": sri(data), **meta,
        }  # fmt: skip
    (root / "package-lock.json").write_text(
        json.dumps({"name": "svc", "lockfileVersion": 3, "packages": entries})
    )
    (root / "package.json").write_text(json.dumps({"name": "svc", "main": "server.js"}))
    (root / "server.js").write_text("require('left-pad');\n")


def addon(tmp: Path, symbol: str) -> bytes:
    return cc(tmp, f"addon-{symbol}", f"void {symbol}(void){{}}\n", "-shared", "-fPIC").read_bytes()


def test_node_modules_from_the_lockfile(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    node_project(src, {
        "left-pad": ({"index.js": b"module.exports = 1;\n", "package.json": b"{}"}, {}),
        "only-dev": ({"index.js": b"dev\n"}, {"dev": True}),
        "mac-only": ({"index.js": b"mac\n"}, {"optional": True, "os": ["darwin"]}),
        "napi-addon": ({"build/Release/a.node": addon(tmp_path, "napi_register_module_v1")}, {}),
    })  # fmt: skip
    (src / "node_modules" / "stale").mkdir(parents=True)  # a host node_modules never goes in
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    build(src, tmp_path / "c", "app.yaml", "-o", str(tmp_path / "img"))
    c = config(tmp_path / "img")
    assert c["Entrypoint"] == ["/usr/bin/node"] and c["Cmd"] == ["/app/server.js"]
    assert "NODE_ENV=production" in c["Env"]
    fs = rootfs(tmp_path / "img")
    assert fs["app/node_modules/left-pad/index.js"][1] == b"module.exports = 1;\n"
    assert "app/node_modules/napi-addon/build/Release/a.node" in fs
    assert not any(
        p.startswith(("app/node_modules/only-dev", "app/node_modules/mac-only", "app/node_modules/stale"))
        for p in fs
    )
    names = [h["comment"] for h in manifests(tmp_path / "img")["amd64"]["config"]["history"]]
    assert "2 production dependencies from package-lock.json" in names  # left-pad and napi-addon


def test_node_addon_for_another_abi_is_refused(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    node_project(src, {
        "left-pad": ({"index.js": b"1\n"}, {}),
        "old-addon": ({"build/Release/b.node": addon(tmp_path, "node_register_module_v93")}, {}),
    })  # fmt: skip
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=tmp_path / "c")
    assert_one_line_error(proc, "built for Node module ABI 93, but the image's node 20.19.2 has ABI 115")


def test_node_app_on_an_image_with_debians_nodejs(work: Path, tmp_path: Path) -> None:
    """from: an image holding Debian's nodejs: its dpkg records give the ABI (libnode115) and
    the version, and the app runs /usr/bin/node, as on the spec."""
    src, cache = work / "svc", tmp_path / "c"
    build(work, cache, "node.yaml", "-o", "base.oci")
    left_pad = {"left-pad": ({"index.js": b"1\n"}, {"engines": {"node": ">=22"}})}
    node_project(
        src, {**left_pad, "old-addon": ({"b.node": addon(tmp_path, "node_register_module_v93")}, {})}
    )
    (src / "app.yaml").write_text("name: svc\nfrom: oci:../base.oci\narchs: [amd64]\napp: {kind: node}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=cache)
    assert_one_line_error(proc, "built for Node module ABI 93, but the image's node 20.19.2 has ABI 115")
    node_project(src, left_pad)
    build(src, cache, "app.yaml", "-o", str(tmp_path / "img"))
    assert config(tmp_path / "img")["Entrypoint"] == ["/usr/bin/node"]
    proc = run("build", "app.yaml", "-o", str(tmp_path / "img2"), cwd=src, cache=cache)
    assert "warning: left-pad@1.0.0 wants node '>=22', the image has node 20.19.2" in proc.stderr


def test_node_download_not_matching_its_integrity_is_refused(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    node_project(src, {"left-pad": ({"index.js": b"1\n"}, {})})
    (src / "vendor" / "left-pad.tgz").write_bytes(npm_tarball({"index.js": b"evil\n"}))
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=tmp_path / "c")
    assert_one_line_error(proc, "does not match its integrity hash")


# -- java ----------------------------------------------------------------------------------


def jar(path: Path, main: str | None, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        manifest = "Manifest-Version: 1.0\r\n" + (f"Main-Class: {main}\r\n" if main else "") + "\r\n"
        z.writestr("META-INF/MANIFEST.MF", manifest)
        for name, data in files.items():
            z.writestr(name, data)
    return path


def test_java_exploded_layers_and_classpath(work: Path, tmp_path: Path) -> None:
    jar(work / "app.jar", "web.Hello", {"web/Hello.class": b"\xca\xfe\xba\xbe1", "greeting.txt": b"hi\n"})
    (work / "lib").mkdir()
    jar(work / "lib" / "dep.jar", None, {"dep/D.class": b"\xca\xfe\xba\xbe"})
    (work / "app.yaml").write_text(
        "name: web\nfrom: java.yaml\napp: {kind: java, source: app.jar, libs: ['lib/*.jar'], jvm_flags: [-Xss1m]}\n"
    )
    cache = tmp_path / "c"
    _, out = build(work, cache, "app.yaml", "-o", "img")
    assert "app libs, app resources, app classes" in out
    c = config(work / "img")
    assert c["Entrypoint"] == [
        "/usr/bin/java",
        "-Xss1m",
        "-cp",
        "/app/resources:/app/classes:/app/libs/*",
        "web.Hello",
    ]
    fs = rootfs(work / "img")
    assert fs["app/classes/web/Hello.class"][1] == b"\xca\xfe\xba\xbe1"
    assert fs["app/resources/greeting.txt"][1] == b"hi\n" and "app/libs/dep.jar" in fs
    assert "app/resources/META-INF/MANIFEST.MF" not in fs
    # A changed class rebuilds the classes layer only.
    jar(work / "app.jar", "web.Hello", {"web/Hello.class": b"\xca\xfe\xba\xbe2", "greeting.txt": b"hi\n"})
    before = layer_digests(work / "img")
    build(work, cache, "app.yaml", "-o", "img")
    after = layer_digests(work / "img")
    assert before[:-1] == after[:-1] and before[-1] != after[-1]
    # layout: jar runs "java -jar".
    (work / "jar.yaml").write_text(
        "name: web\nfrom: java.yaml\napp: {kind: java, source: app.jar, layout: jar}\n"
    )
    build(work, cache, "jar.yaml", "-o", "img-jar")
    assert config(work / "img-jar")["Entrypoint"] == ["/usr/bin/java", "-jar", "/app/app.jar"]


def test_jar_without_main_class_is_refused(work: Path, tmp_path: Path) -> None:
    jar(work / "lib.jar", None, {"a/B.class": b"\xca\xfe"})
    (work / "app.yaml").write_text("name: web\nfrom: java.yaml\napp: {kind: java, source: lib.jar}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "lib.jar has no Main-Class in META-INF/MANIFEST.MF")
    assert "app.main_class" in proc.stderr


def test_java_truststore_is_written_from_the_bundle(work: Path, tmp_path: Path, ca_pem: bytes) -> None:
    build(work, tmp_path / "c", "java.yaml", "-o", "img")
    fs = rootfs(work / "img")
    store = fs["etc/ssl/certs/java/cacerts"][1]
    certs = jks.read_jks(store)
    assert certs == [("debian:test_ca.pem", jks.pem_certificates(ca_pem)[0])]
    with pytest.raises(ValueError, match="integrity"):
        jks.read_jks(store, password="wrong")
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.fail("keytool is missing (the JDK comes with scripts/setup.sh)")
    (tmp_path / "cacerts").write_bytes(store)
    proc = subprocess.run([keytool, "-list", "-keystore", str(tmp_path / "cacerts"), "-storepass", "changeit"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0 and "debian:test_ca.pem" in proc.stdout and "trustedCertEntry" in proc.stdout
    # No JRE, no truststore.
    build(work, tmp_path / "c", "glibc.yaml", "-o", "img-glibc")
    assert "etc/ssl/certs/java/cacerts" not in rootfs(work / "img-glibc")


# -- an app on an OCI layout ---------------------------------------------------------------


def test_app_on_an_oci_layout_matches_the_same_app_on_the_spec(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    (src / "myapp").mkdir(parents=True)
    (src / "myapp" / "__main__.py").write_text("print('hi')\n")
    cache = tmp_path / "c"
    build(work, cache, "py.yaml", "-o", "base.oci", "--tag", "py:1.0")
    app = "app: {kind: python, entrypoint: [-m, myapp], exclude: ['*.yaml']}\n"
    (src / "spec.yaml").write_text("name: svc\nfrom: ../py.yaml\n" + app)
    (src / "layout.yaml").write_text(
        "name: svc\nfrom: oci:../base.oci:1.0\narchs: [amd64]\nenv: {MODE: prod}\n" + app
    )
    build(src, cache, "spec.yaml", "-o", str(tmp_path / "a"))
    _, out = build(src, cache, "layout.yaml", "-o", str(tmp_path / "b"))
    assert "(base 1, base 2, base 3, app code)" in out
    # The base's layers are reused as they are, and the app's layer is the same bytes.
    assert layer_digests(tmp_path / "a") == layer_digests(tmp_path / "b")
    c = config(tmp_path / "b")
    assert c["Entrypoint"] == ["/usr/bin/python3", "-m", "myapp"] and c["User"] == "65532"
    assert c["Env"][0].startswith("PATH=") and "MODE=prod" in c["Env"] and "Cmd" not in c
    history = manifests(tmp_path / "b")["amd64"]["config"]["history"]
    assert [h["created_by"] for h in history][-1] == "distill: app code"
    # The lock pins the layout's image by digest; debug needs a distill base; a bad layout
    # or a damaged layer is one line.
    locked = run("lock", "layout.yaml", cwd=src, cache=cache)
    assert locked.returncode == 0, locked.stderr
    index = json.loads((work / "base.oci" / "index.json").read_text())
    lock = json.loads((src / "layout.lock.json").read_text())
    assert lock["base"] == {"image": "oci:../base.oci:1.0", "digest": index["manifests"][0]["digest"]}
    again = run("build", "layout.yaml", "--locked", "-o", str(tmp_path / "locked"), cwd=src, cache=cache)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == out.splitlines()[-1], again.stderr
    proc = run("build", "layout.yaml", "--variant", "debug", "-o", "x", cwd=src, cache=cache)
    assert_one_line_error(proc, "debug variants need a distill base")
    (src / "nowhere.yaml").write_text("name: x\nfrom: oci:../nowhere\napp: {kind: python}\n")
    assert_one_line_error(run("build", "nowhere.yaml", cwd=src, cache=cache), "is not an OCI image layout")
    shutil.copytree(work / "base.oci", work / "broken.oci")
    biggest = max((work / "broken.oci" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:-10])
    (src / "broken.yaml").write_text(
        "name: x\nfrom: oci:../broken.oci\narchs: [amd64]\napp: {kind: python, entrypoint: [-m, myapp]}\n"
    )
    proc = run("build", "broken.yaml", "-o", "y", cwd=src, cache=tmp_path / "fresh")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "does not match its digest" in proc.stderr or "not a readable tar" in proc.stderr, proc.stderr


def test_lockfile_entry_climbing_out_of_node_modules_is_refused(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    node_project(src, {"left-pad": ({"index.js": b"1\n"}, {})})
    lock = json.loads((src / "package-lock.json").read_text())
    lock["packages"]["node_modules/../../../escaped"] = lock["packages"].pop("node_modules/left-pad")
    (src / "package-lock.json").write_text(json.dumps(lock))
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=tmp_path / "c")
    assert_one_line_error(proc, "is not a place inside node_modules")
    assert not list(tmp_path.rglob("escaped"))  # nothing unpacked anywhere


def test_layout_filesystem_applies_whiteouts_at_every_depth(tmp_path: Path) -> None:
    from distill.oci import read
    from distill.oci.source import LayoutSource

    def layer(entries: dict[str, bytes | None]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                if data is None:
                    info.type = tarfile.DIRTYPE
                    tf.addfile(info)
                else:
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        return gzip.compress(buf.getvalue(), mtime=0)

    layout = tmp_path / "img"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    layers = [
        layer({".hidden": b"x", "keep": b"k", "dir": None, "dir/a": b"a", "./gone": b"g"}),
        layer({".wh..hidden": b"", ".wh.gone": b"", "dir/.wh..wh..opq": b"", "dir/b": b"b"}),
    ]
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(x)).hexdigest() for x in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    )
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config.encode()), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(x), "size": len(x)} for x in layers],
    })  # fmt: skip
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest.encode()), "size": len(manifest)}]}))  # fmt: skip
    source = LayoutSource(layout, None, str(layout))
    tree, _, stats = read.read_tree(source, source.image("amd64"))
    assert sorted(p for p in tree.nodes if p) == ["dir", "dir/b", "keep"]
    assert [files for _, files in stats] == [4, 1]


# -- python: the image's interpreter, wheels only, nothing run or written on the host -------


def run_env(args: list[str], cwd: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI with a chosen environment (HOME, XDG_CACHE_HOME), bounded in time."""
    env = {k: v for k, v in os.environ.items() if k != "DISTILL_MIRROR"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "distill", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


@pytest.mark.network
def test_requires_python_is_checked_against_the_image_not_the_host(work: Path, tmp_path: Path) -> None:
    """networkx 3.7 (a py3-none-any wheel) requires Python >= 3.12: the host runs 3.11, the
    image 3.13. pip < 24.2 refused it ('requires a different Python: 3.11.7')."""
    assert sys.version_info[:2] < (3, 12), "the test needs a host Python older than the image's"
    src = work / "svc"
    src.mkdir()
    (src / "main.py").write_text("import networkx\n")
    (src / "requirements.txt").write_text("networkx==3.7\n")
    (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
    home, xdg = tmp_path / "home", tmp_path / "xdg"
    home.mkdir()
    xdg.mkdir()
    cache = tmp_path / "distill-cache"
    proc = run_env(["build", "app.yaml", "-o", "img", "--cache-dir", str(cache)], src,
                   {"HOME": str(home), "XDG_CACHE_HOME": str(xdg)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    fs = rootfs(src / "img")
    assert "usr/local/lib/python3.13/dist-packages/networkx/__init__.py" in fs
    assert "usr/local/lib/python3.13/dist-packages/networkx-3.7.dist-info/METADATA" in fs
    assert list(xdg.rglob("*")) == [] and not (home / ".cache").exists()


def wheel(path: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal py3-none-any wheel, written with zipfile."""
    out = path / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(
            f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
            for n, d in contents.items()
        )
        + f"{info}/RECORD,,\n"
    )
    with zipfile.ZipFile(out, "w") as z:
        for n, d in contents.items():
            z.writestr(n, d)
        z.writestr(f"{info}/RECORD", record)
    return out


def local_project(root: Path, marker: Path) -> None:
    """A project whose build would write ``marker``: setup.py runs at any pip build step."""
    root.mkdir(parents=True)
    (root / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').write('setup.py ran')\n"
        "from setuptools import setup\nsetup(name='localpkg', version='1.0')\n"
    )


def test_pip_writes_its_cache_under_distills_cache_dir(work: Path, tmp_path: Path) -> None:
    """An index on 127.0.0.1 whose answers may be cached (pip caches plain http only from a
    trusted host): pip's HTTP cache lands in
    <cache-dir>/pip, and nothing in HOME or XDG_CACHE_HOME (old code: XDG_CACHE_HOME/pip)."""
    served = tmp_path / "index"
    (served / "files").mkdir(parents=True)
    whl = wheel(served / "files", "localpkg", "1.0", {"localpkg/__init__.py": b"VALUE = 1\n"})
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    (served / "simple" / "localpkg").mkdir(parents=True)
    (served / "simple" / "localpkg" / "index.html").write_text(
        f'<a href="../../files/{whl.name}#sha256={digest}">{whl.name}</a>\n'
    )

    class Cacheable(http.server.SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            self.send_header("Cache-Control", "max-age=600")
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Cacheable, directory=str(served))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        src = work / "svc"
        src.mkdir()
        (src / "main.py").write_text("import localpkg\n")
        port = httpd.server_address[1]
        (src / "requirements.txt").write_text(
            f"--index-url http://127.0.0.1:{port}/simple/\n--trusted-host 127.0.0.1\nlocalpkg==1.0\n"
        )
        (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
        home, xdg, cache = tmp_path / "home", tmp_path / "xdg", tmp_path / "distill-cache"
        home.mkdir()
        xdg.mkdir()
        proc = run_env(["build", "app.yaml", "-o", "img", "--cache-dir", str(cache)], src,
                       {"HOME": str(home), "XDG_CACHE_HOME": str(xdg), "PIP_FIND_LINKS": ""})  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "usr/local/lib/python3.13/dist-packages/localpkg/__init__.py" in rootfs(src / "img")
    assert [p for p in (cache / "pip").rglob("*") if p.is_file()]  # pip's cache is distill's
    # (pip runs 'rustc --version' for its user agent, and rustup may write ~/.rustup: not pip's.)
    assert list(xdg.rglob("*")) == [] and not (home / ".cache").exists()


def test_requirement_that_pip_would_build_is_refused_and_never_built(work: Path, tmp_path: Path) -> None:
    """A local directory, an sdist, -e, a VCS or source URL and --no-binary: one line each,
    exit 2, before pip runs; the project's setup.py never runs (its marker stays absent)."""
    src = work / "svc"
    src.mkdir()
    (src / "main.py").write_text("print(1)\n")
    marker = tmp_path / "PWNED-setup"
    local_project(src / "localpkg", marker)
    sdist = io.BytesIO()
    with tarfile.open(fileobj=sdist, mode="w:gz") as tf:
        data = (src / "localpkg" / "setup.py").read_bytes()
        info = tarfile.TarInfo("localpkg-1.0/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    (src / "localpkg-1.0.tar.gz").write_bytes(sdist.getvalue())
    (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
    cases = {
        "./localpkg\n": "requirements.txt:1: requirement './localpkg' is a local project",
        "# a comment\n\nlocalpkg @ file:./localpkg\n": "requirements.txt:3: requirement 'localpkg @ file:./localpkg' is a URL",
        "-e ./localpkg\n": "requirements.txt:1: an editable requirement (-e)",
        "--editable=localpkg\n": "requirements.txt:1: an editable requirement (-e)",
        "localpkg-1.0.tar.gz\n": "is a local project or source archive",
        "git+https://example.invalid/localpkg.git#egg=localpkg\n": "is a VCS URL",
        "https://example.invalid/localpkg-1.0.tar.gz\n": "is a URL of a source archive",
        "--no-binary :all:\nlocalpkg\n": "--no-binary asks pip to build",
        "-r more.txt\n": "more.txt:2: requirement './localpkg",
        "requests==2.32.3 \\\n  ; python_version > '3'\n${PWD}/localpkg\n": "requirements.txt:3:",
    }
    (src / "more.txt").write_text("six\n./localpkg[extra] --hash=sha256:00\n")
    cache = tmp_path / "c"
    for text, message in cases.items():
        (src / "requirements.txt").write_text(text)
        proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=cache)
        assert_one_line_error(proc, message)
        assert "pip wheel --no-deps" in proc.stderr  # how to build a wheel instead
        assert not marker.exists() and not (src / "img").exists()
        assert not (cache / "distill" / "apps" / "python").exists() or not any(
            (cache / "distill" / "apps" / "python").iterdir()
        )


def test_local_wheels_install_and_the_cached_result_is_verified(work: Path, tmp_path: Path) -> None:
    """A wheel the user built (by --find-links or by path) installs; the cached pip result
    carries a manifest: a damaged file is found, discarded and rebuilt with one warning, and
    with --offline is one error line; a local wheel rebuilt under its name is picked up."""
    src = work / "svc"
    (src / "wheels").mkdir(parents=True)
    wheel(src / "wheels", "localpkg", "1.0", {"localpkg/__init__.py": b"VALUE = 1\n"})
    wheel(src / "wheels", "otherpkg", "2.0", {"otherpkg/__init__.py": b"VALUE = 2\n"})
    (src / "main.py").write_text("import localpkg\n")
    (src / "requirements.txt").write_text(
        "--no-index\n--find-links wheels\nlocalpkg==1.0\n./wheels/otherpkg-2.0-py3-none-any.whl\n"
    )
    (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
    cache = tmp_path / "c"
    site = "usr/local/lib/python3.13/dist-packages"
    build(src, cache, "app.yaml", "-o", "img")
    fs = rootfs(src / "img")
    assert fs[f"{site}/localpkg/__init__.py"][1] == b"VALUE = 1\n"
    assert fs[f"{site}/otherpkg/__init__.py"][1] == b"VALUE = 2\n"
    (entry,) = (cache / "distill" / "apps" / "python").iterdir()
    assert json.loads((entry / "manifest.json").read_text())["files"]["site/localpkg/__init__.py"][1] == 10
    damaged = entry / "site" / "localpkg" / "__init__.py"
    damaged.write_bytes(b"VALUE = 666\n")
    proc = run("build", "app.yaml", "-o", "img2", cwd=src, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "warning: the cached Python dependencies of requirements.txt" in proc.stderr
    assert "file site/localpkg/__init__.py differs" in proc.stderr
    assert damaged.read_bytes() == b"VALUE = 1\n"  # rebuilt
    assert rootfs(src / "img2")[f"{site}/localpkg/__init__.py"][1] == b"VALUE = 1\n"
    (entry / "site" / "extra.py").write_text("planted\n")
    proc = run("build", "app.yaml", "-o", "img3", "--offline", cwd=src, cache=cache)
    assert_one_line_error(proc, "is damaged (file site/extra.py differs from its manifest)")
    assert not (src / "img3").exists() and not entry.exists()
    # A wheel rebuilt under the same name (by path, or in a --find-links directory) is a new key.
    build(src, cache, "app.yaml", "-o", "img4")
    wheel(src / "wheels", "otherpkg", "2.0", {"otherpkg/__init__.py": b"VALUE = 3\n"})
    wheel(src / "wheels", "localpkg", "1.0", {"localpkg/__init__.py": b"VALUE = 4\n"})
    build(src, cache, "app.yaml", "-o", "img5")
    fs = rootfs(src / "img5")
    assert fs[f"{site}/otherpkg/__init__.py"][1] == b"VALUE = 3\n"
    assert fs[f"{site}/localpkg/__init__.py"][1] == b"VALUE = 4\n"


def test_verify_app_cache_removes_damaged_entries(tmp_path: Path) -> None:
    from distill.app import cachecheck

    root = tmp_path / "cache"
    entries = []
    for kind, name in (("python", "a"), ("python", "b"), ("node", "c"), ("node", "d")):
        entry = root / "apps" / kind / name
        (entry / "tree" / "pkg").mkdir(parents=True)
        (entry / "tree" / "pkg" / "f.py").write_text(f"{name}\n")
        (entry / "tree" / "link").symlink_to("pkg/f.py")
        cachecheck.write_manifest(entry)
        entries.append(entry)
    (root / "apps" / "python" / "e").mkdir()  # no manifest: an entry never completed
    assert cachecheck.verify_app_cache(root) == [root / "apps" / "python" / "e"]
    (entries[1] / "tree" / "pkg" / "f.py").write_text("B\n")  # same size, other bytes
    (entries[2] / "tree" / "link").unlink()
    (entries[2] / "tree" / "link").symlink_to("/etc/passwd")
    (entries[3] / "tree" / "pkg" / "f.py").chmod(0o755)
    assert cachecheck.verify_app_cache(root) == [entries[1], entries[2], entries[3]]
    assert [p.name for p in (root / "apps" / "python").iterdir()] == ["a"]
    assert not (root / "apps" / "node").exists() or not any((root / "apps" / "node").iterdir())
    assert cachecheck.verify_app_cache(root) == []


def test_relative_python_script_runs_from_any_workdir(work: Path, tmp_path: Path) -> None:
    from distill.app import _python_script

    src = work / "svc"
    src.mkdir()
    (src / "report.py").write_text("print(1)\n")
    (src / "app.yaml").write_text(
        "name: svc\nfrom: ../py.yaml\nworkdir: /tmp\napp: {kind: python, entrypoint: [report.py, --all]}\n"
    )
    build(src, tmp_path / "c", "app.yaml", "-o", "img")
    c = config(src / "img")
    assert c["Entrypoint"] == ["/usr/bin/python3", "/app/report.py", "--all"] and c["WorkingDir"] == "/tmp"
    assert _python_script(["-u", "-X", "dev", "./tools/r.py", "x.py"], "/srv/") == [
        "-u", "-X", "dev", "/srv/tools/r.py", "x.py",
    ]  # fmt: skip
    for unchanged in (["-m", "pkg", "a.py"], ["-c", "print(1)"], ["/opt/x.py"], ["-mpkg"]):
        assert _python_script(unchanged, "/app") == unchanged


def test_debug_variant_of_an_app_still_runs_the_app(work: Path, tmp_path: Path) -> None:
    """The app's entrypoint and CMD are kept (the shell is for 'exec'/--entrypoint); a
    flavor's debug variant starts /busybox/sh."""
    shutil.copy(cc(tmp_path, "hello", HELLO, "-static"), work / "hello")
    (work / "app.yaml").write_text(
        "name: hello\nfrom: glibc.yaml\napp: {kind: binary, source: hello, args: [--port, '80']}\n"
    )
    cache = tmp_path / "c"
    for variant in ("debug", "debug-nonroot"):
        build(work, cache, "app.yaml", "--variant", variant, "-o", variant)
        c = config(work / variant)
        assert c["Entrypoint"] == ["/app/hello"] and c["Cmd"] == ["--port", "80"], c
        assert c["Env"][0].endswith(":/busybox") and c["User"] == "65532"
        fs = rootfs(work / variant)
        assert fs["busybox/sh"][0].linkname == "busybox" and "app/hello" in fs
    build(work, cache, "glibc.yaml", "--variant", "debug", "-o", "flavor-debug")
    c = config(work / "flavor-debug")
    assert c["Entrypoint"] == ["/busybox/sh"] and "Cmd" not in c


# -- bounded reading: special files are refused at once -----------------------------------


def test_special_files_as_app_inputs_are_refused_without_blocking(work: Path, tmp_path: Path) -> None:
    """A FIFO given as requirements.txt, .dockerignore, .npmrc, package.json or
    package-lock.json: one line, exit 2, at once (old code waited forever on some, and
    silently skipped others)."""
    cases = {
        ("python", "requirements.txt"): "not a regular file",
        ("python", ".dockerignore"): "not a regular file",
        ("node", "package-lock.json"): "not a regular file",
        ("node", "package.json"): "not a regular file",
        ("node", ".npmrc"): "not a regular file",
    }
    for i, ((kind, name), message) in enumerate(cases.items()):
        src = work / f"svc{i}"
        src.mkdir()
        (src / "main.py").write_text("print(1)\n")
        if kind == "node":
            node_project(src, {"left-pad": ({"index.js": b"1\n"}, {})})
            if name == ".npmrc":  # without 'resolved' the registry is looked up (and .npmrc read)
                lock = json.loads((src / "package-lock.json").read_text())
                del lock["packages"]["node_modules/left-pad"]["resolved"]
                (src / "package-lock.json").write_text(json.dumps(lock))
        (src / name).unlink(missing_ok=True)
        os.mkfifo(src / name)
        (src / "app.yaml").write_text(f"name: svc\nfrom: ../{'py' if kind == 'python' else 'node'}.yaml\n"
                                      f"app: {{kind: {kind}}}\n")  # fmt: skip
        proc = run_env(["build", "app.yaml", "-o", "img", "--cache-dir", str(tmp_path / "c")], src,
                       {"npm_config_registry": ""})  # fmt: skip
        assert_one_line_error(proc, message)
        assert name in proc.stderr


# -- node: libc, engines, file: tarballs, install scripts, the tarball cache, bounded unpack --


def test_node_packages_for_musl_are_skipped_and_engines_are_checked(work: Path, tmp_path: Path) -> None:
    """npm filters by os, cpu and libc (the image is glibc); a package whose engines.node
    excludes the image's node 20.19.2 is one warning line (an unreadable range: none)."""
    src = work / "svc"
    node_project(src, {
        "left-pad": ({"index.js": b"1\n"}, {"engines": {"node": ">= 18"}}),
        "addon-linux-x64-gnu": ({"a.node": b"g"}, {"optional": True, "os": ["linux"], "cpu": ["x64"], "libc": ["glibc"]}),
        "addon-linux-x64-musl": ({"a.node": b"m"}, {"optional": True, "os": ["linux"], "cpu": ["x64"], "libc": ["musl"]}),
        "not-musl": ({"index.js": b"n\n"}, {"libc": ["!musl"]}),
        "new-node": ({"index.js": b"2\n"}, {"engines": {"node": "^18 || >=22.12"}}),
        "odd-range": ({"index.js": b"3\n"}, {"engines": {"node": ">=20.0.0-rc.1 <21"}}),
    })  # fmt: skip
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    proc = run("build", "app.yaml", "-o", str(tmp_path / "img"), cwd=src, cache=tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    fs = rootfs(tmp_path / "img")
    assert "app/node_modules/addon-linux-x64-gnu/a.node" in fs and "app/node_modules/not-musl/index.js" in fs
    assert not any(p.startswith("app/node_modules/addon-linux-x64-musl") for p in fs)
    warnings = [ln for ln in proc.stderr.splitlines() if "warning:" in ln]
    assert warnings == [
        "distill: warning: new-node@1.0.0 wants node '^18 || >=22.12', the image has node 20.19.2"
    ]


def test_node_satisfies_reads_npm_ranges() -> None:
    from distill.app.node import satisfies

    yes = [
        ">=18",
        "^20",
        "20.x",
        "~20.19.0",
        "14 - 20",
        ">=12 <21",
        "*",
        "",
        "^18 || ^20",
        ">= 14.17.0",
        "<=20",
        "v20",
    ]
    no = [">=22", "^18 || >=22", "18.x", "~20.18", "14 - 19.9", "<20", ">20", ">20.19", "^20.20", "=20.19.1"]
    assert all(satisfies("20.19.2", r) is True for r in yes), [r for r in yes if not satisfies("20.19.2", r)]
    assert all(satisfies("20.19.2", r) is False for r in no), [
        r for r in no if satisfies("20.19.2", r) is not False
    ]
    assert satisfies("0.2.5", "^0.2.3") is True and satisfies("0.3.0", "^0.2.3") is False
    for unreadable in ("foo", ">=18.0.0-beta", "latest", "1.2.3.4"):
        assert satisfies("20.19.2", unreadable) is None


def test_node_file_tarball_outside_the_project_is_refused_and_scripts_never_run(
    work: Path, tmp_path: Path
) -> None:
    """A lockfile's 'resolved: file:' may not reach outside the project (old code read any
    host file into the image); packages' install scripts never run (their marker stays absent)."""
    marker = tmp_path / "PWNED-postinstall"
    scripts = json.dumps({"name": "hooked", "version": "1.0.0", "scripts": {
        "preinstall": f"touch {marker}", "install": f"touch {marker}", "postinstall": f"touch {marker}",
    }}).encode()  # fmt: skip
    src = work / "svc"
    node_project(src, {"hooked": ({"package.json": scripts, "index.js": b"1\n"}, {"hasInstallScript": True})})
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    cache = tmp_path / "c"
    build(src, cache, "app.yaml", "-o", str(tmp_path / "img"))
    assert rootfs(tmp_path / "img")["app/node_modules/hooked/package.json"][1] == scripts
    assert not marker.exists()
    outside = tmp_path / "outside.tgz"
    outside.write_bytes(npm_tarball({"index.js": b"from outside\n"}))
    lock = json.loads((src / "package-lock.json").read_text())
    for resolved in (f"file:{outside}", "file:../../outside.tgz", f"file://{outside}"):
        lock["packages"]["node_modules/hooked"].update(resolved=resolved, integrity=sri(outside.read_bytes()))
        (src / "package-lock.json").write_text(json.dumps(lock))
        proc = run("build", "app.yaml", "-o", "bad", cwd=src, cache=cache)
        assert_one_line_error(proc, "outside the project")
        assert not (src / "bad").exists()
    lock["packages"]["node_modules/hooked"].update(
        resolved="git+ssh://git@example.invalid/x.git", integrity=""
    )
    (src / "package-lock.json").write_text(json.dumps(lock))
    assert_one_line_error(run("build", "app.yaml", "-o", "bad", cwd=src, cache=cache), "'git+ssh' address")


def test_node_cached_tarballs_and_node_modules_are_verified(work: Path, tmp_path: Path) -> None:
    """A damaged cached tarball is re-checked against the lockfile's integrity, discarded
    and fetched again (one warning); damaged node_modules are rebuilt, or with --offline
    one error line."""
    src = work / "svc"
    node_project(src, {"left-pad": ({"index.js": b"module.exports = 1;\n"}, {})})
    (src / "app.yaml").write_text("name: svc\nfrom: ../node.yaml\napp: {kind: node}\n")
    cache = tmp_path / "c"
    build(src, cache, "app.yaml", "-o", str(tmp_path / "img"))
    (tarball,) = (cache / "distill" / "npm").glob("*.tgz")
    (entry,) = (cache / "distill" / "apps" / "node").iterdir()
    good = tarball.read_bytes()
    tarball.write_bytes(npm_tarball({"index.js": b"evil\n"}))
    shutil.rmtree(entry)  # so that the tarball is read again
    proc = run("build", "app.yaml", "-o", str(tmp_path / "img2"), cwd=src, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "warning: the cached tarball of left-pad@1.0.0" in proc.stderr and "is damaged" in proc.stderr
    assert tarball.read_bytes() == good
    assert rootfs(tmp_path / "img2")["app/node_modules/left-pad/index.js"][1] == b"module.exports = 1;\n"
    (entry / "node_modules" / "left-pad" / "index.js").write_text("evil\n")
    proc = run("build", "app.yaml", "-o", str(tmp_path / "img3"), cwd=src, cache=cache)
    assert proc.returncode == 0 and "warning: the cached node_modules of package-lock.json" in proc.stderr
    assert rootfs(tmp_path / "img3")["app/node_modules/left-pad/index.js"][1] == b"module.exports = 1;\n"
    (entry / "node_modules" / "left-pad" / "index.js").write_text("evil\n")
    proc = run("build", "app.yaml", "-o", str(tmp_path / "img4"), "--offline", cwd=src, cache=cache)
    assert_one_line_error(proc, "is damaged (file node_modules/left-pad/index.js differs from its manifest)")
    # 'distill cache verify' (verify_app_cache) checks the tarballs against their recorded integrity.
    from distill.app import cachecheck

    build(src, cache, "app.yaml", "-o", str(tmp_path / "img5"))
    assert cachecheck.verify_app_cache(cache / "distill") == []
    tarball.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert cachecheck.verify_app_cache(cache / "distill") == [tarball]
    assert not tarball.exists() and cachecheck.verify_app_cache(cache / "distill") == []


def test_node_tarball_unpack_is_bounded(tmp_path: Path) -> None:
    """The expansion ratio, the entry count and a PAX header are capped while streaming."""
    from distill.app import node
    from distill.errors import BuildError

    assert node.expansion_limit(1 << 20) == 512 << 20 and node.expansion_limit(10 << 20) == 1000 << 20
    bomb = npm_tarball({"zeros": b"\0" * (4 << 20)})
    assert len(bomb) < 10_000
    with pytest.raises(BuildError, match=r"expands to more than 1 MiB"):
        node._unpack(bomb, tmp_path / "a", "bomb@1", limit=1 << 20)
    node._unpack(bomb, tmp_path / "b", "bomb@1")  # within max(512 MiB, 100x)
    assert (tmp_path / "b" / "zeros").stat().st_size == 4 << 20
    many = npm_tarball({f"f{i}": b"" for i in range(50)})
    with pytest.raises(BuildError, match="more than 20 entries"):
        node._unpack(many, tmp_path / "c", "many@1", max_entries=20)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("package/x")
        info.pax_headers = {"comment": "A" * (2 << 20)}
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(BuildError, match="PAX header"):
        node._unpack(buf.getvalue(), tmp_path / "d", "pax@1")
    with pytest.raises(BuildError, match="cannot unpack"):
        node._unpack(b"\x1f\x8b" + b"not gzip", tmp_path / "e", "junk@1")


def test_requirements_that_need_no_build_are_accepted(tmp_path: Path) -> None:
    """No false refusals: names, extras, markers, hashes, wheel paths and URLs, and pip's
    index options pass the check (and every included file is read, for the cache key)."""
    from distill.app import pyreq
    from distill.errors import SpecError

    (tmp_path / "constraints.txt").write_text("urllib3<3\n")
    (tmp_path / "more.txt").write_text("-c constraints.txt\nidna\n")
    (tmp_path / "requirements.txt").write_text(
        "# pinned\nflask==3.1  # web\nFlask[async]>=3; python_version >= '3.8'\n"
        "numpy>=1.26 --hash=sha256:00 \\\n    --hash=sha256:11\n"
        "requests @ https://h.invalid/requests-2.0-py3-none-any.whl ; sys_platform == 'linux'\n"
        "./wheels/x-1.0-py3-none-any.whl\npkg @ file:///abs/pkg-1-py3-none-any.whl\n"
        "https://h.invalid/y-1.0-cp313-cp313-manylinux_2_17_x86_64.whl#sha256=00\n"
        "--find-links ./wheels\n-f wheels\n--index-url https://h.invalid/simple\n--extra-index-url=https://h.invalid/x\n"
        "--pre\n--prefer-binary\n--only-binary :all:\n--trusted-host h.invalid\n-rmore.txt\n"
    )
    files = pyreq.scan(tmp_path / "requirements.txt")
    assert [p.name for p, _ in files] == ["requirements.txt", "more.txt", "constraints.txt"]
    (tmp_path / "constraints.txt").write_text("urllib3 @ git+https://h.invalid/urllib3\n")
    with pytest.raises(SpecError, match=r"constraints.txt:1: requirement .* is a VCS URL"):
        pyreq.scan(tmp_path / "requirements.txt")
    # Errors never echo what does not look like a requirement (e.g. another kind of file).
    (tmp_path / "shadow").write_text("root:$6$salt$hash/x:19000:0:99999:7:::\n")
    with pytest.raises(SpecError) as caught:
        pyreq.scan(tmp_path / "shadow")
    assert "$6$" not in caught.value.one_line() and "shadow:1:" in caught.value.one_line()


def test_pip_parse_error_names_the_position_not_the_content(work: Path, tmp_path: Path) -> None:
    src = work / "svc"
    src.mkdir()
    (src / "main.py").write_text("print(1)\n")
    (src / "requirements.txt").write_text("flask\nsecret token value 12345\n")
    (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
    proc = run("build", "app.yaml", "-o", "img", cwd=src, cache=tmp_path / "c")
    assert_one_line_error(proc, "pip could not install requirements.txt: ")
    assert "requirements.txt line 2: not a valid requirement" in proc.stderr and "secret" not in proc.stderr


@pytest.mark.network
def test_a_pip_too_old_for_the_image_is_one_line(work: Path, tmp_path: Path) -> None:
    """distill runs its own environment's pip and checks its version first: with pip 23.2.1
    first on the path (a real one, installed here) the build stops with one line saying how
    to upgrade, instead of pip's 'requires a different Python: 3.11' about the host."""
    old = tmp_path / "old-pip"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(old), "pip==23.2.1"],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    src = work / "svc"
    src.mkdir()
    (src / "main.py").write_text("import networkx\n")
    (src / "requirements.txt").write_text("networkx==3.7\n")
    (src / "app.yaml").write_text("name: svc\nfrom: ../py.yaml\napp: {kind: python}\n")
    proc = run_env(["build", "app.yaml", "-o", "img", "--cache-dir", str(tmp_path / "c")], src,
                   {"PYTHONPATH": str(old)})  # fmt: skip
    assert_one_line_error(proc, "distill needs pip 24.2 or newer in its environment, found 23.2.1")
    assert "pip install 'pip>=24.2'" in proc.stderr and not (src / "img").exists()
