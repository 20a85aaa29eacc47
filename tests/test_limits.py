"""Parser bombs and malformed documents, through the command line: YAML (specs and
Kubernetes manifests), the JSON of OCI layouts, and tar archives (image layers, .debs).
Each must end in one error line and exit 2, quickly and in bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocitools import F, layer_tar, write_layout

# The command's own time and peak memory, measured by its own process (VmHWM): a
# pytest worker's high-water mark is carried across exec into a child's rusage.
_PROBE = (
    "import sys, time\nfrom distill.cli import main\nt = time.perf_counter()\nrc = main(sys.argv[1:])\n"
    "t = time.perf_counter() - t\n"
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
    "print('PROBE', hwm, t, file=sys.stderr)\nsys.exit(rc)"
)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str  # without the probe's line
    seconds: float  # in main(), without the interpreter's start
    peak_mib: float


def probe(*args: str, cwd: Path | None = None, timeout: float = 120) -> Run:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    *lines, last = proc.stderr.strip().splitlines() or [""]
    assert last.startswith("PROBE "), proc.stderr[-3000:]
    _, hwm, seconds = last.split()
    return Run(proc.returncode, proc.stdout, "\n".join(lines), float(seconds), int(hwm) / 1024)


def one_line_exit_2(run: Run, *needles: str, seconds: float = 1.0, mib: float = 100) -> str:
    """Exit 2, exactly one ``distill: error:`` line (no traceback), within the bounds."""
    assert run.code == 2, (run.code, run.stdout[-500:], run.stderr[-3000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), run.stderr[-3000:]
    for n in needles:
        assert n in lines[0], lines[0]
    assert run.seconds < seconds, f"{run.seconds:.2f} s: {lines[0]}"
    assert run.peak_mib < mib, f"peak RSS {run.peak_mib:.0f} MiB: {lines[0]}"
    return lines[0]


# -- YAML ----------------------------------------------------------------------------

LAUGHS = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
    for i in range(9)
)


def test_billion_laughs_is_small() -> None:
    assert len(LAUGHS.encode()) < 400 and LAUGHS.count("*") == 72


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("bomb.yaml", LAUGHS, "aliases expand to more than"),
        ("deep.yaml", "[" * 100_000 + "\n", "nest"),
        ("deepmap.yaml", "a: " + "{a: " * 100_000 + "\n", "nested deeper than 64"),
        ("blockmap.yaml", "".join(" " * i + "a:\n" for i in range(1000)), "nested deeper than 64"),
        (
            "alias-depth.yaml",
            "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
            "nested deeper than 64 levels (through an alias)",
        ),
        ("cycle.yaml", "a: &a [1, *a]\n", "an alias refers to a node that contains it"),
        (
            "merge-bomb.yaml",
            "a: &a {x: 1, y: 2}\n"
            + "".join(
                f"b{i}: &b{i} {{<<: [{', '.join([f'*b{i - 1}' if i else '*a'] * 8)}]}}\n" for i in range(9)
            ),
            "aliases expand",
        ),
    ],
)
@pytest.mark.parametrize("command", ["build", "audit"])
def test_yaml_bombs_are_one_line_fast_and_small(
    tmp_path: Path, name: str, text: str, needle: str, command: str
) -> None:
    """A spec (distill build) or a manifest (distill audit) that would take minutes and
    gigabytes to expand, or nest deeper than a parser recurses, is refused while it is
    composed: one line with the file's line:column, exit 2, < 1 s, < 100 MiB."""
    path = tmp_path / name
    path.write_text(text)
    line = one_line_exit_2(probe(command, str(path), cwd=tmp_path), needle, f"{name}:")
    assert "lol" not in line  # positions, never the file's content


# -- the JSON of image layouts --------------------------------------------------------


def _layout(root: Path) -> dict[str, Any]:
    """A small valid layout: one layer with a file; returns the manifest."""
    return write_layout(root, [layer_tar([F("app/hello", b"hi\n")])], {"User": "1000"})


def _put(root: Path, doc: Any) -> dict[str, Any]:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _set_manifest(root: Path, manifest: Any) -> None:
    """Point index.json at a new manifest document."""
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(_put(root, manifest))
    (root / "index.json").write_text(json.dumps(index))


def _set_config(root: Path, manifest: dict[str, Any], config: Any) -> None:
    manifest["config"].update(_put(root, config))
    _set_manifest(root, manifest)


def _config(manifest: dict[str, Any], root: Path, **change: Any) -> dict[str, Any]:
    doc = json.loads((root / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_bytes())
    return {**doc, **change}


def _index(root: Path, doc: Any) -> None:
    (root / "index.json").write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())


def _entry(root: Path, **change: Any) -> None:
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(change)
    _index(root, index)


Breaker = Callable[[Path, dict[str, Any]], None]
MALFORMED: dict[str, tuple[Breaker, str]] = {
    "manifests-number": (lambda r, m: _index(r, {"manifests": 5}), "manifests: Input should be a valid list"),
    "index-array": (lambda r, m: _index(r, [1, 2]), "index.json: should be a JSON object, not an array"),
    "index-deep": (lambda r, m: _index(r, b"[" * 100_000), "index.json"),
    "index-deep-valid": (
        lambda r, m: _index(r, b'{"x": ' + b"[" * 100 + b"]" * 100 + b', "manifests": []}'),
        "nested deeper than 64",
    ),
    "index-not-json": (lambda r, m: _index(r, b"\xff\xfe{"), "not valid JSON"),
    "index-huge": (lambda r, m: _index(r, b" " * (5 << 20) + b"{}"), "larger than the limit"),
    "entry-number": (lambda r, m: _index(r, {"manifests": [5]}), "manifests[0]: should be a JSON object"),
    "digest-number": (lambda r, m: _entry(r, digest=5), "manifests[0].digest"),
    "digest-path": (lambda r, m: _entry(r, digest="sha256:../../../etc/passwd"), "manifests[0].digest"),
    "annotations-string": (lambda r, m: _entry(r, annotations="x"), "manifests[0].annotations"),
    "annotation-value": (
        lambda r, m: _entry(r, annotations={"org.opencontainers.image.ref.name": ["latest"]}),
        "manifests[0].annotations",
    ),
    "platform-list": (lambda r, m: _entry(r, platform=[]), "manifests[0].platform"),
    "size-string": (lambda r, m: _entry(r, size="12"), "manifests[0].size"),
    "manifest-config-number": (lambda r, m: _set_manifest(r, {**m, "config": 5}), "config"),
    "manifest-no-layers": (
        lambda r, m: _set_manifest(r, {k: v for k, v in m.items() if k != "layers"}),
        "layers",
    ),
    "manifest-layers-object": (lambda r, m: _set_manifest(r, {**m, "layers": {"a": 1}}), "layers"),
    "manifest-layer-size": (
        lambda r, m: _set_manifest(r, {**m, "layers": [{**m["layers"][0], "size": "x"}]}),
        "layers[0].size",
    ),
    "manifest-layer-digest": (
        lambda r, m: _set_manifest(r, {**m, "layers": [{**m["layers"][0], "digest": None}]}),
        "layers[0].digest",
    ),
    "manifest-array": (lambda r, m: _set_manifest(r, [m]), "should be a JSON object, not an array"),
    "manifest-deep": (lambda r, m: _set_manifest(r, b"[" * 100_000), "the manifest"),
    "config-rootfs-number": (lambda r, m: _set_config(r, m, _config(m, r, rootfs=5)), "rootfs"),
    "config-diff-ids-string": (
        lambda r, m: _set_config(r, m, _config(m, r, rootfs={"diff_ids": "abc"})),
        "rootfs.diff_ids",
    ),
    "config-env-string": (
        lambda r, m: _set_config(r, m, _config(m, r, config={"Env": "PATH=/bin"})),
        "config.Env",
    ),
    "config-entrypoint-number": (
        lambda r, m: _set_config(r, m, _config(m, r, config={"Entrypoint": 5})),
        "config.Entrypoint",
    ),
    "config-architecture-list": (
        lambda r, m: _set_config(r, m, _config(m, r, architecture=[])),
        "architecture",
    ),
    "config-string": (lambda r, m: _set_config(r, m, "amd64"), "should be a JSON object, not a string"),
}


@pytest.fixture(scope="module")
def python_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("app")
    (src / "myapp").mkdir()
    (src / "myapp" / "__main__.py").write_text("print('hi')\n")
    return src


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_layout_json_is_one_line(tmp_path: Path, python_app: Path, case: str) -> None:
    """A type or shape a layout's index.json, manifest or config must not have is one line
    naming the document and the field, exit 2, for `distill audit DIR` and for an app
    built `from: oci:DIR` (TypeError, KeyError, AttributeError, RecursionError before)."""
    breaker, needle = MALFORMED[case]
    root = tmp_path / "img"
    breaker(root, _layout(root))
    one_line_exit_2(probe("audit", str(root), "-q"), needle)
    spec = python_app / f"{case}.yaml"
    spec.write_text(
        f"name: x\nfrom: oci:{root}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, myapp]}}\n"
    )
    out = tmp_path / "out"
    run = probe("build", str(spec), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), cwd=python_app)
    one_line_exit_2(run, needle)
    assert not out.exists()


def test_special_file_as_index_json_is_refused_without_blocking(tmp_path: Path, python_app: Path) -> None:
    root = tmp_path / "img"
    _layout(root)
    (root / "index.json").unlink()
    os.mkfifo(root / "index.json")
    one_line_exit_2(probe("audit", str(root), "-q", timeout=30), "index.json", "not a regular file")
    spec = python_app / "fifo.yaml"
    spec.write_text(
        f"name: x\nfrom: oci:{root}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, myapp]}}\n"
    )
    run = probe("build", str(spec), "-o", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), timeout=30)
    one_line_exit_2(run, "index.json", "not a regular file")
