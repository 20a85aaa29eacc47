"""distill audit on Dockerfiles, manifests and small generated layouts: the corpus's
expected findings, output formats, exit codes, and bad input (corrupt, truncated,
wrong digests, bombs) ending in one line and exit 2 with bounded memory."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from ocitools import F, layer_tar, write_layout

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "audit_corpus"

# Each corpus file and the findings it must produce (id -> lines), no more, no fewer.
EXPECTED: dict[str, dict[str, list[int]]] = {
    "seed-go.Dockerfile": {"DF-FROM-UNPINNED": [2, 8]},
    "seed-java.Dockerfile": {"DF-FROM-UNPINNED": [2, 6]},
    "seed-node.Dockerfile": {"DF-FROM-UNPINNED": [2, 7]},
    "seed-node14.Dockerfile": {"DF-FROM-UNPINNED": [2, 13], "DF-USER-MISSING": [13]},
    "seed-python-multistage.Dockerfile": {
        "DF-FROM-UNPINNED": [2],
        "DF-FROM-LATEST": [4],
        "DF-USER-MISSING": [4],
    },
    "seed-python-debug.Dockerfile": {"DF-FROM-UNPINNED": [2], "DF-DEBUG-BASE": [2], "DF-USER-MISSING": [2]},
    "single-stage-python.Dockerfile": {
        "DF-FROM-UNPINNED": [2],
        "DF-HEALTHCHECK-CURL": [11],
        "DF-SHELL-FORM": [12],
        "DF-SINGLE-STAGE": [2],
        "DF-USER-MISSING": [2],
    },
    "broken-distroless.Dockerfile": {
        "DF-FROM-UNPINNED": [3],
        "DF-FROM-LATEST": [7],
        "DF-RUN-NO-SHELL": [10],
        "DF-USER-NAME": [11],
        "DF-HEALTHCHECK-SHELL": [12],
        "DF-SHELL-FORM": [13],
        "DF-NPM-START": [13],
    },
    "root-user.Dockerfile": {"DF-USER-ROOT": [3]},
    "multiline-heredoc.Dockerfile": {"DF-FROM-UNPINNED": [2]},
    "seed-probes.yaml": {"K8S-IMAGE-UNPINNED": [18], "K8S-EXEC-PROBE": [21]},
    "helm-rendered.yaml": {
        "K8S-IMAGE-UNPINNED": [21],
        "K8S-DEBUG-IMAGE": [21],
        "K8S-SHELL-COMMAND": [21],
        "K8S-EXEC-PROBE": [25],
        "K8S-PRIV-ESCALATION": [21],
        "K8S-RW-ROOTFS": [21],
        "K8S-RUNASNONROOT-NAME": [21],
        "K8S-KUBECTL-EXEC": [43],
    },
    "privileged-daemonset.yaml": {
        "K8S-IMAGE-LATEST": [9],
        "K8S-PRIVILEGED": [9],
        "K8S-RUN-AS-ROOT": [9],
        "K8S-INTERACTIVE": [9],
        "K8S-PRIV-ESCALATION": [9],
        "K8S-RW-ROOTFS": [9],
    },
    "hardened-statefulset.yaml": {},
    "pod-list.yaml": {"K8S-EXEC-HOOK": [13], "K8S-IMAGE-UNPINNED": [23], "K8S-RW-ROOTFS": [23]},
}


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        cwd=cwd,
    )


def audit_json(*targets: str, code: int = 0) -> dict:  # type: ignore[type-arg]
    proc = run("audit", *targets, "--format", "json", "-q")
    assert proc.returncode == code, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_corpus_findings_are_exactly_the_expected_ones() -> None:
    files = sorted(p.name for p in CORPUS.iterdir() if p.is_file())
    assert files == sorted(EXPECTED), "every corpus file has its expectation"
    # A directory: every Dockerfile and manifest in it; the broken ones under bad/ are
    # errors (exit 2) and the others are still audited.
    doc = audit_json(str(CORPUS), code=2)
    bad = {Path(r["target"]).name for r in doc["reports"]} & {"broken.yaml"}
    assert not bad
    got: dict[str, dict[str, list[int]]] = {}
    for r in doc["reports"]:
        name = Path(r["target"]).name
        if Path(r["target"]).parent.name == "bad":
            continue
        ids: dict[str, list[int]] = {}
        for f in r["findings"]:
            assert (
                f["explanation"]
                and f["fix"]
                and f["severity"] in ("info", "low", "medium", "high", "critical")
            )
            assert f["location"] == f"{r['target']}:{f['line']}"
            ids.setdefault(f["id"], []).append(f["line"])
        got[name] = {k: sorted(v) for k, v in ids.items()}
    assert got == EXPECTED
    assert len(doc["errors"]) == 3


def test_dockerfile_rewrite_and_spec(tmp_path: Path) -> None:
    doc = audit_json(str(CORPUS / "single-stage-python.Dockerfile"))
    rec = doc["reports"][0]["recommendation"]
    assert rec["flavor"] == "python3" and rec["variant"] == "nonroot"
    assert "FROM python:3.12 AS build" in rec["rewrite"]
    # the final stage has python3, no console scripts, and the dependencies pip installed
    assert (
        'ENTRYPOINT ["/usr/bin/python3", "-m", "gunicorn", "-b", "0.0.0.0:8000", "app:app"]' in rec["rewrite"]
    )
    assert (
        "RUN pip install --target /app/site-packages --python-version 3.13 --only-binary=:all: -r requirements.txt"
        in rec["rewrite"]
    )
    assert "COPY --from=build /app /app\nENV PYTHONPATH=/app/site-packages" in rec["rewrite"]
    assert "USER 65532:65532" in rec["rewrite"]
    spec = tmp_path / "migrated.yaml"
    proc = run("audit", str(CORPUS / "single-stage-python.Dockerfile"), "--write-spec", str(spec), "-q")
    assert proc.returncode == 0, proc.stderr
    text = spec.read_text()
    assert "from: python3" in text and "kind: python" in text and "- gunicorn" in text
    assert "exposed_ports:\n- 8000" in text
    # npm start becomes node's script; a static Go build goes on static
    node = audit_json(str(CORPUS / "broken-distroless.Dockerfile"))["reports"][0]["recommendation"]
    assert node["flavor"] == "nodejs" and any("npm" in n for n in node["notes"])
    go = audit_json(str(CORPUS / "seed-go.Dockerfile"))["reports"][0]["recommendation"]
    assert go["flavor"] == "static" and 'ENTRYPOINT ["/app/app"]' in go["rewrite"]
    java = audit_json(str(CORPUS / "seed-java.Dockerfile"))["reports"][0]["recommendation"]
    assert java["flavor"] == "java" and java["app"] == {"kind": "java", "source": "app.jar", "layout": "jar"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unterminated-heredoc.Dockerfile", "unparsable Dockerfile (unterminated heredoc)"),
        ("unknown-instruction.Dockerfile", ":2: unparsable Dockerfile (unknown instruction 'FROOM')"),
        ("broken.yaml", "broken.yaml:9:1: invalid YAML"),
    ],
)
def test_unparsable_files_are_one_line_and_exit_2(name: str, message: str) -> None:
    proc = run("audit", str(CORPUS / "bad" / name), "-q")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_formats_fail_on_and_output_file(tmp_path: Path) -> None:
    target = str(CORPUS / "broken-distroless.Dockerfile")
    assert run("audit", target, "--fail-on", "high", "-q").returncode == 1
    assert run("audit", target, "--fail-on", "critical", "-q").returncode == 0
    assert run("audit", target, "-q").returncode == 0  # default: report only
    sarif_path = tmp_path / "out.sarif"
    proc = run(
        "audit", target, str(CORPUS / "privileged-daemonset.yaml"), "--format", "sarif", "-o", str(sarif_path)
    )
    assert proc.returncode == 0 and proc.stdout == ""
    sarif = json.loads(sarif_path.read_text())
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    rules = {r["id"] for r in run0["tool"]["driver"]["rules"]}
    assert {"DF-SHELL-FORM", "K8S-PRIVILEGED"} <= rules
    results = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in run0["results"]
    }
    assert ("DF-HEALTHCHECK-SHELL", 12) in results and ("K8S-PRIVILEGED", 9) in results
    assert {r["level"] for r in run0["results"]} <= {"error", "warning", "note"}
    md = run("audit", target, "--format", "markdown", "-q").stdout
    assert md.startswith("# distill audit") and "| high | `DF-SHELL-FORM` |" in md
    term = run("audit", target, "-q").stdout
    assert "DF-NPM-START" in term and "\x1b[" not in term  # no colour when not a TTY
    assert "suggested rewrite" in term


def _layout(tmp_path: Path, name: str, entries: list[list[F]], config: dict | None = None) -> Path:  # type: ignore[type-arg]
    root = tmp_path / name
    write_layout(root, [layer_tar(e) for e in entries], config)
    return root


def test_generated_image_whiteouts_setuid_keys_and_waste(tmp_path: Path) -> None:
    key = (
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    big = os.urandom(2 << 20)
    lower = [
        F("bin", kind="dir", mode=0o755),
        F("bin/busybox", b"\x7fELF" + b"\0" * 60, 0o755),
        F("bin/sh", kind="symlink", target="busybox"),
        F("bin/bash", b"#!", 0o755),
        F("bin/wget", kind="link", target="bin/busybox"),
        F("usr/bin/passwd", b"x", 0o4755),
        F("usr/bin/curl", b"x", 0o755),
        F("usr/lib/big.bin", big),
        F("tmp", kind="dir", mode=0o1777),
        F("data", kind="dir", mode=0o777),
        F("root/.ssh/id_ed25519", key, 0o600),
        F("home/app/.netrc", b"machine example password hunter2\n"),
        F("etc/ssl/certs/ca.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        F("lib/apk/db/installed", b"P:musl\nV:1.2.4\n\nP:busybox\nV:1.36\n\n"),
        F("lib/ld-musl-x86_64.so.1", b"x", 0o755),
        F("etc/os-release", b'ID=alpine\nPRETTY_NAME="Alpine Linux v3.19"\n'),
    ]
    upper = [
        F("bin/.wh.bash"),  # whiteout: bash is gone
        F("usr/lib/big.bin", big),  # rewritten: the lower copy is waste
        F("root/.ssh/.wh..wh..opq"),  # opaque: the key is gone
        F(".wh.data"),  # a root-level whiteout
    ]
    root = _layout(tmp_path, "gen", [lower, upper], {"User": "app", "Cmd": ["/bin/sh"]})
    r = audit_json(str(root))["reports"][0]
    ids = {f["id"]: f for f in r["findings"]}
    assert ids["IMG-SHELL"]["paths"] == ["/bin/busybox", "/bin/sh"]
    assert (
        "/bin/wget" in ids["IMG-NETWORK-TOOL"]["paths"]
        and "/usr/bin/curl" in ids["IMG-NETWORK-TOOL"]["paths"]
    )
    assert ids["IMG-SETUID"]["paths"] == ["/usr/bin/passwd"]
    assert "IMG-PRIVATE-KEY" not in ids  # hidden by the opaque whiteout
    assert ids["IMG-CREDENTIALS"]["paths"] == ["/home/app/.netrc"]
    assert "IMG-WORLD-WRITABLE" not in ids  # /tmp is sticky, /data was whited out
    assert ids["IMG-USER-NAME"]["severity"] == "medium"
    assert ids["IMG-WASTED-SPACE"]["paths"][0] == "/usr/lib/big.bin"
    fx = r["facts"]
    assert fx["libc"] == "musl" and fx["os"] == "Alpine Linux v3.19"
    assert fx["package_databases"] == {"apk": 2} and fx["packages"] == 2
    # as dive counts: every copy of a path touched by more than one layer (big.bin twice;
    # bash's 2 bytes, and again for its whiteout)
    assert fx["wasted_bytes"] == 2 * len(big) + 2 + 2
    assert fx["layers"] == 2 and fx["files"] == 10
    assert r["grade"] == "F"
    # without the whiteouts the key and the world-writable directory are found
    root2 = _layout(tmp_path, "gen2", [lower], {"User": "0"})
    ids2 = {f["id"]: f for f in audit_json(str(root2))["reports"][0]["findings"]}
    assert ids2["IMG-PRIVATE-KEY"]["severity"] == "critical"
    assert ids2["IMG-PRIVATE-KEY"]["paths"] == ["/root/.ssh/id_ed25519"]
    assert ids2["IMG-WORLD-WRITABLE"]["paths"] == ["/data"]
    assert "IMG-ROOT" in ids2


def test_compare_table(tmp_path: Path) -> None:
    a = _layout(tmp_path, "a", [[F("bin/sh", b"x", 0o755), F("usr/bin/su", b"x", 0o4755)]])
    b = _layout(tmp_path, "b", [[F("app/server", b"x", 0o755)]], {"User": "65532:65532"})
    proc = run("compare", str(a), str(b), "--format", "json", "-q")
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["image"]).name: r for r in json.loads(proc.stdout)["images"]}
    assert rows["a"]["shell"] and rows["a"]["setuid"] == 1 and rows["a"]["user"] == "root (unset)"
    assert not rows["b"]["shell"] and rows["b"]["setuid"] == 0 and rows["b"]["findings"] == 0
    assert rows["b"]["grade"] == "A" and rows["a"]["grade"] in ("D", "F")
    md = run("compare", str(a), str(b), "--format", "markdown", "-q").stdout
    assert md.splitlines()[0].startswith("| Image | Size |") and len(md.splitlines()) == 4
    proc = run("compare", str(a), str(CORPUS / "root-user.Dockerfile"), "-q")
    assert proc.returncode == 2 and "is a dockerfile, not an image" in proc.stderr


def _one_line_exit_2(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_corrupt_truncated_and_tampered_layouts(tmp_path: Path) -> None:
    good = [F("etc/os-release", b"ID=debian\n"), F("bin/app", b"x" * 5000, 0o755)]
    # a layer that is gzip but not a tar (its digest is right)
    root = tmp_path / "notar"
    write_layout(root, [], raw_layers=[gzip.compress(os.urandom(3000))])
    _one_line_exit_2(run("audit", str(root), "-q"), "is not a readable tar")
    # truncated layer blob
    root = _layout(tmp_path, "trunc", [good])
    manifest = json.loads((root / "index.json").read_text())["manifests"][0]
    m = json.loads((root / "blobs/sha256" / manifest["digest"][7:]).read_bytes())
    blob = root / "blobs/sha256" / m["layers"][0]["digest"][7:]
    blob.write_bytes(blob.read_bytes()[:-100])
    _one_line_exit_2(run("audit", str(root), "-q"), "layer 1")
    # a manifest whose bytes no longer match the digest the index names
    root = _layout(tmp_path, "tamper", [good])
    mpath = (
        root / "blobs/sha256" / json.loads((root / "index.json").read_text())["manifests"][0]["digest"][7:]
    )
    mpath.write_bytes(mpath.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion": 3'))
    _one_line_exit_2(run("audit", str(root), "-q"), "does not match its digest")
    # a tar header that declares 100 GB it does not have
    root = _layout(tmp_path, "liar", [[F("huge", size=100 << 30)]])
    _one_line_exit_2(run("audit", str(root), "-q"), "layer 1")
    # a corrupt archive file and a missing target
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"\0" * 100 + os.urandom(5000))
    _one_line_exit_2(run("audit", str(bad), "-q"))
    _one_line_exit_2(run("audit", str(tmp_path / "nothing-here"), "-q"), "no such file")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    _one_line_exit_2(run("audit", str(empty), "-q"), "holds no Dockerfile")


def test_decompression_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    # 1 GiB of zeros in one file: about 1 MiB gzipped.
    root = tmp_path / "bomb"
    import io
    import zlib

    out = io.BytesIO()
    ti = tarfile.TarInfo("zeros")
    ti.size = 1 << 30
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    out.write(comp.compress(ti.tobuf()))
    chunk = b"\0" * (1 << 20)
    for _ in range(1 << 10):
        out.write(comp.compress(chunk))
    out.write(comp.compress(b"\0" * 1024))
    out.write(comp.flush())
    write_layout(root, [], raw_layers=[out.getvalue()])
    # The audit's own peak: VmHWM of its process, read by the process itself at the end.
    # (wait4/RUSAGE_CHILDREN would not do: Linux carries the forking parent's high-water
    # mark across exec, and a pytest worker can be larger than the audit.)
    probe = (
        "import sys\nfrom distill.cli import main\nrc = main(sys.argv[1:])\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
        "print('VmHWM', hwm, file=sys.stderr)\nsys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, "audit", str(root), "-q"], capture_output=True, text=True, timeout=300
    )
    *lines, last = proc.stderr.strip().splitlines()
    peak_kib = int(last.split()[1])
    _one_line_exit_2(
        subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, "\n".join(lines)),
        "decompression bomb",
    )
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"
    print(f"bomb refused with a peak RSS of {peak_kib >> 10} MiB")


def test_docker_archive_layers_are_checked_against_their_diff_ids(tmp_path: Path) -> None:
    """A docker-save archive (manifest.json, config, layer.tar) read by diff_id; a layer
    whose content differs from its diff_id is refused."""
    import hashlib
    import io

    tar = layer_tar([F("bin/sh", b"x", 0o755)])
    diff = "sha256:" + hashlib.sha256(tar).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": "1000"},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        }
    ).encode()

    def archive(path: Path, layer: bytes) -> None:
        with tarfile.open(path, "w") as tf:
            for name, data in (
                (
                    "manifest.json",
                    json.dumps(
                        [{"Config": "c.json", "RepoTags": ["x/y:1"], "Layers": ["l/layer.tar"]}]
                    ).encode(),
                ),
                ("c.json", config),
                ("l/layer.tar", layer),
            ):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))

    archive(tmp_path / "good.tar", tar)
    r = audit_json(str(tmp_path / "good.tar"))["reports"][0]
    assert [f["id"] for f in r["findings"]] == ["IMG-SHELL"]
    archive(tmp_path / "bad.tar", layer_tar([F("bin/sh", b"y", 0o755)]))
    _one_line_exit_2(run("audit", str(tmp_path / "bad.tar"), "-q"), "does not match its digest")


def test_local_engine_and_usage_errors(tmp_path: Path) -> None:
    # docker: goes through `docker save`; without a reachable engine that is one line
    env_path = os.environ.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "audit", "docker:no-such-image:1", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": env_path, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"},
    )
    _one_line_exit_2(proc, "docker:no-such-image:1: docker")
    _one_line_exit_2(run("audit", "docker://no-host-named/x", "-q"), "not a registry reference")
    # a name the engine's CLI would read as one of its options never reaches it
    for target in ("podman:--help", "docker:-q"):
        _one_line_exit_2(run("audit", target, "-q"), "an image name, not an option")
    _one_line_exit_2(
        run(
            "audit",
            str(CORPUS / "seed-go.Dockerfile"),
            str(CORPUS / "seed-java.Dockerfile"),
            "--write-spec",
            str(tmp_path / "x.yaml"),
        ),
        "--write-spec takes one",
    )
    _one_line_exit_2(run("audit", "docker://127.0.0.1:5000/x:1", "--username", "u"), "--password-stdin")
    assert not (tmp_path / "x.yaml").exists()


def test_recommends_the_runtime_major_googles_images_name() -> None:
    """Google's java images say JAVA_VERSION, official Node.js images NODE_VERSION: the
    recommendation keeps the major where distill has it built in (java21 is the default
    java, Node.js 20 the default nodejs); Google's /nodejs/bin/node gets a note."""
    from distill.audit.recommend import recommend

    def flavor(argv: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
        rec = recommend(argv, None, argv[0], False, env)
        return rec["flavor"], rec["notes"]

    java = ["/usr/bin/java", "-jar", "/app.jar"]
    assert flavor(java, {"JAVA_VERSION": "25.0.4.1"})[0] == "java25"
    assert flavor(java, {"JAVA_VERSION": "17.0.20.1"})[0] == "java17"
    assert flavor(java, {"JAVA_VERSION": "21.0.12.1"})[0] == "java"
    assert flavor(java, {"JAVA_VERSION": "11.0.2"})[0] == "java"  # no java11 built-in: the default
    assert flavor(["node", "server.js"], {"NODE_VERSION": "24.1.0"})[0] == "nodejs24"
    name, notes = flavor(["/nodejs/bin/node", "server.js"], {})
    assert name == "nodejs" and any("nodejs22, nodejs24 and nodejs26" in n for n in notes)


def _metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: x\n\n{'long text ' * 5000}\n".encode()


def test_write_spec_carries_what_pip_installed(tmp_path: Path) -> None:
    site = "usr/local/lib/python3.11/site-packages"
    lower = [
        F("usr/bin/python3.11", b"\x7fELF" + b"\0" * 60, 0o755),
        F(f"{site}/flask/__init__.py", b""),
        F(f"{site}/Flask-3.0.3.dist-info/METADATA", _metadata("Flask", "3.0.3")),
        F(f"{site}/itsdangerous-2.1.2.dist-info/METADATA", _metadata("itsdangerous", "2.1.2")),
        F(f"{site}/old_dep-1.0.dist-info/METADATA", _metadata("old_dep", "1.0")),
        F(f"{site}/pip-24.0.dist-info/METADATA", _metadata("pip", "24.0")),  # the installer: left out
        # Debian's python3-* packages (apt's, not pip's) and a forged name are not pinned
        F("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", _metadata("six", "1.16.0")),
        F(f"{site}/evil-1.dist-info/METADATA", b"Name: evil --index-url http://x\nVersion: 1\n\n"),
    ]
    upper = [
        F(f"{site}/.wh.old_dep-1.0.dist-info"),  # pip uninstall in a later layer
        F(f"{site}/itsdangerous-2.1.2.dist-info/.wh.METADATA"),
        F(f"{site}/itsdangerous-2.2.0.dist-info/METADATA", _metadata("itsdangerous", "2.2.0")),  # upgraded
        F("app/app.py", b"import flask\n"),
    ]
    root = _layout(tmp_path, "py", [lower, upper], {"Cmd": ["python3", "/app/app.py"], "WorkingDir": "/app"})
    r = audit_json(str(root))["reports"][0]
    rec = r["recommendation"]
    assert rec["requirements"] == ["Flask==3.0.3", "itsdangerous==2.2.0"]
    assert rec["python_version"] == "3.11" and rec["distro"] == "debian12"
    assert f"pip installed 2 distributions in /{site} (Flask==3.0.3, itsdangerous==2.2.0)" in " ".join(
        rec["notes"]
    )
    out = tmp_path / "migrated"
    out.mkdir()
    proc = run("audit", str(root), "--write-spec", str(out / "app.yaml"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # -q: the report on stdout, nothing else
    req = (out / "requirements.txt").read_text()
    assert [line for line in req.splitlines() if not line.startswith("#")] == [
        "Flask==3.0.3",
        "itsdangerous==2.2.0",
    ]
    text = (out / "app.yaml").read_text()
    assert "requirements: requirements.txt" in text and "distro: debian12" in text
    assert "archs:\n- amd64" in text and "Written beside it: requirements.txt" in text
    # --distro chooses the written spec's distro; a different requirements.txt is never overwritten
    (out / "requirements.txt").write_text("flask\n")
    proc = run("audit", str(root), "--write-spec", str(out / "app.yaml"), "--distro", "debian13", "-q")
    assert proc.returncode == 2 and "requirements.txt already exists" in proc.stderr
    assert (out / "requirements.txt").read_text() == "flask\n"
    (out / "requirements.txt").unlink()
    proc = run("audit", str(root), "--write-spec", str(out / "app.yaml"), "--distro", "debian13", "-q")
    assert proc.returncode == 0 and "distro: debian13" in (out / "app.yaml").read_text()


def test_write_spec_carries_the_node_lockfile(tmp_path: Path) -> None:
    lock = json.dumps(
        {"name": "web", "lockfileVersion": 3, "packages": {"": {}, "node_modules/ms": {"version": "2.1.3"}}}
    ).encode()
    hidden = json.dumps(
        {"lockfileVersion": 3, "packages": {"node_modules/ms": {"version": "2.1.3"}}}
    ).encode()
    base = [F("usr/bin/node", b"\x7fELF" + b"\0" * 60, 0o755), F("srv/web/server.js", b"")]
    for name, files, want in (
        ("withlock", [F("srv/web/package-lock.json", lock)], lock),
        ("hidden", [F("srv/web/node_modules/.package-lock.json", hidden)], hidden),
    ):
        root = _layout(
            tmp_path, name, [base + files], {"Cmd": ["node", "server.js"], "WorkingDir": "/srv/web"}
        )
        out = tmp_path / f"{name}-spec"
        out.mkdir()
        proc = run("audit", str(root), "--write-spec", str(out / "app.yaml"), "-q")
        assert proc.returncode == 0, proc.stderr
        assert (out / "package-lock.json").read_bytes() == want
        assert "kind: node" in (out / "app.yaml").read_text()


def test_audit_and_compare_take_the_common_flags(tmp_path: Path) -> None:
    root = _layout(tmp_path, "two", [[F("bin/sh", b"x", 0o755)]], {"User": "0"})
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0]["platform"] = {"os": "linux", "architecture": "amd64"}
    (root / "index.json").write_text(json.dumps(index))
    for cmd in ("audit", "compare"):
        proc = run(cmd, str(root), "--offline", "--arch", "amd64", "-q", "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
    proc = run("audit", "docker://127.0.0.1:1/x:1", "--offline", "-q")
    assert proc.returncode == 2 and "--offline, and docker://127.0.0.1:1/x:1 is in a registry" in proc.stderr
    proc = run("audit", str(root), "--arch", "sparc")
    assert proc.returncode == 2 and "unknown architecture 'sparc'" in proc.stderr
    # the image has amd64 only: an arm64 report is an error line, the amd64 one is there
    proc = run("audit", str(root), "--arch", "amd64", "--arch", "arm64", "--format", "json", "-q")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and len(doc["reports"]) == 1 and len(doc["errors"]) == 1


def test_names_from_what_is_audited_are_text_not_terminal_markup(tmp_path: Path) -> None:
    """A Dockerfile (or an image's file names, users, entrypoints) holding rich's markup —
    `[/]` closes nothing, `[bold]` styles — is printed as it is written: it made the
    terminal report a MarkupError traceback before."""
    (tmp_path / "Dockerfile").write_text("FROM debian:[/]latest\nRUN apt-get install -y [bold]x\nUSER root\n")
    proc = run("audit", str(tmp_path / "Dockerfile"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "FROM debian:[/]latest" in proc.stdout, proc.stdout
