"""Parser bombs and malformed documents, through the command line: YAML (specs and
Kubernetes manifests), the JSON of OCI layouts, and tar archives (image layers, .debs).
Each must end in one error line and exit 2, quickly and in bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from debrepo import Pkg, _ar, _tar
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


def probe_code(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """Python ``code`` (given ``args`` as sys.argv[1:]) in a fresh process, with its peak memory and time."""
    script = (
        "import sys, time\n_t = time.perf_counter()\ntry:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "finally:\n    _t = time.perf_counter() - _t\n"
        "    _h = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
        "    print('PROBE', _h, _t, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    lines = proc.stderr.strip().splitlines()
    probe_line = [ln for ln in lines if ln.startswith("PROBE ")]
    assert probe_line, proc.stderr[-3000:]
    _, hwm, seconds = probe_line[-1].split()
    rest = "\n".join(ln for ln in lines if not ln.startswith("PROBE "))
    return Run(proc.returncode, proc.stdout, rest, float(seconds), int(hwm) / 1024)


def probe(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """``distill ARGS`` with the time spent in main() and the process's peak memory."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
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
    one_line_exit_2(probe("audit", str(root), "-q"), needle, seconds=3)
    spec = python_app / f"{case}.yaml"
    spec.write_text(
        f"name: x\nfrom: oci:{root}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, myapp]}}\n"
    )
    out = tmp_path / "out"
    run = probe("build", str(spec), "-o", str(out), "--cache-dir", str(tmp_path / "cache"), cwd=python_app)
    one_line_exit_2(run, needle, seconds=3)
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


# -- tar: PAX headers, entry counts, expansion, whiteouts -------------------------------


def _gz(chunks: Iterator[bytes]) -> bytes:
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    return b"".join(comp.compress(c) for c in chunks) + comp.flush()


def _header(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = kind, size, 1700000000
    return info.tobuf(tarfile.USTAR_FORMAT)


def _pax_bomb(declared: int = 1 << 30) -> Iterator[bytes]:
    """A PAX header that declares ``declared`` bytes, and has them (zeros: ~1 MiB gzipped)."""
    yield _header("././@PaxHeader", tarfile.XHDTYPE, declared)
    zeros = b"\0" * (1 << 20)
    for _ in range(declared >> 20):
        yield zeros
    yield b"\0" * 1024


def _many(n: int, name: str = "f") -> Iterator[bytes]:
    """``n`` entries (one name again and again: what grows is the reader's own memory)."""
    block = _header(name) * 1000
    for _ in range(n // 1000):
        yield block
    yield _header(name) * (n % 1000) + b"\0" * 1024


def _spec(app: Path, root: Path, name: str) -> Path:
    spec = app / f"{name}.yaml"
    spec.write_text(
        f"name: x\nfrom: oci:{root}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, myapp]}}\n"
    )
    return spec


def _audit_and_build(
    root: Path,
    app: Path,
    tmp: Path,
    *needles: str,
    env: dict[str, str] | None = None,
    seconds: float = 3.0,
    mib: float = 100,
) -> None:
    one_line_exit_2(probe("audit", str(root), "-q", env=env), *needles, seconds=seconds, mib=mib)
    spec = _spec(app, root, root.name)
    run = probe("build", str(spec), "-o", str(tmp / "out"), "--cache-dir", str(tmp / "cache"), env=env)
    one_line_exit_2(run, *needles, seconds=seconds, mib=mib)
    assert not (tmp / "out").exists()


def test_pax_header_bomb_is_refused_before_it_is_read(tmp_path: Path, python_app: Path) -> None:
    """A layer whose PAX header declares (and holds) 1 GiB: tarfile would read it whole
    into memory (2.5 GB peak before); refused from its header, < 100 MiB."""
    root = tmp_path / "paxbomb"
    write_layout(root, [], raw_layers=[_gz(_pax_bomb())])
    _audit_and_build(root, python_app, tmp_path, "extended header of 1073741824 bytes")


def test_pax_header_bomb_as_an_image_archive(tmp_path: Path) -> None:
    """`distill audit ARCHIVE` looks at the file's first tar header to tell an archive
    from a Dockerfile: tarfile.is_tarfile read a 1 GiB PAX header whole to do so."""
    bomb = tmp_path / "image.tar.gz"
    bomb.write_bytes(_gz(_pax_bomb()))
    one_line_exit_2(probe("audit", str(bomb), "-q"), "image.tar.gz", "extended header of 1073741824 bytes")


def test_chained_extended_headers_are_refused(tmp_path: Path, python_app: Path) -> None:
    """PAX headers one after another: each one a recursion in tarfile."""
    root = tmp_path / "chain"
    record = b"20 comment=xxxxxxxx\n"
    pax = _header("././@PaxHeader", tarfile.XHDTYPE, len(record)) + record.ljust(512, b"\0")
    write_layout(root, [], raw_layers=[_gz(iter([pax * 5000, _header("f"), b"\0" * 1024]))])
    _audit_and_build(root, python_app, tmp_path, "more than 16 extended headers in a row")


def test_entry_count_cap_is_applied_on_the_real_path(tmp_path: Path, python_app: Path) -> None:
    """The cap on entries (2M, shared by the audit and builds) with a small value from
    DISTILL_MAX_TAR_ENTRIES: the same code path, cheaply."""
    root = tmp_path / "many"
    write_layout(root, [], raw_layers=[_gz(_many(5000))])
    _audit_and_build(
        root, python_app, tmp_path, "more than 1000 tar entries", env={"DISTILL_MAX_TAR_ENTRIES": "1000"}
    )


def test_many_entries_take_bounded_memory(tmp_path: Path) -> None:
    """200k entries under the cap: tarfile kept every header it read, even streaming
    (~400 bytes each: memory grew with the archive, > 120 MiB here before); now the
    readers keep none."""
    root = tmp_path / "lots"
    write_layout(root, [], raw_layers=[_gz(_many(200_000))])
    run = probe("audit", str(root), "-q", "--format", "json")
    assert run.code in (0, 1), run.stderr[-2000:]
    assert json.loads(run.stdout)["reports"][0]["facts"]["layers"] == 1
    assert run.peak_mib < 80, f"audit: peak RSS {run.peak_mib:.0f} MiB"
    # The build's reading of a base layout (what `from: oci:` does before the app's layers).
    code = (
        "import sys\nfrom pathlib import Path\nfrom distill.oci import read\n"
        "from distill.oci.source import open_source\n"
        f"src = open_source({str(root)!r})\ntree, _, stats = read.read_tree(src, src.image('amd64'))\n"
        "assert [p for p in tree.nodes if p] == ['f'] and stats[0][1] == 200000, (list(tree.nodes)[:3], stats)\n"
    )
    run = probe_code(code)
    assert run.code == 0, run.stderr[-2000:]
    assert run.peak_mib < 80, f"read_tree: peak RSS {run.peak_mib:.0f} MiB"


FLOOD_SECONDS = 40


def test_whiteout_flood_is_linear(tmp_path: Path) -> None:
    """40k files, then a layer of 20k whiteouts and 20k opaque markers between 20k new
    files: each whiteout scanned the whole tree (build) or each opaque marker the whole
    directory (audit) before: minutes. Now seconds, and the result is right."""
    lower = (_header(f"e/f{i}") for i in range(40_000))
    upper = itertools.chain(
        (_header(f"e/.wh.f{i}") for i in range(0, 40_000, 2)),
        (h for i in range(20_000) for h in (_header(f"d/g{i}"), _header("d/.wh..wh..opq"))),
    )
    root = tmp_path / "flood"
    write_layout(
        root,
        [],
        raw_layers=[
            _gz(itertools.chain([_header("d/old")], lower, [b"\0" * 1024])),
            _gz(itertools.chain(upper, [b"\0" * 1024])),
        ],
    )
    run = probe("audit", str(root), "-q", "--format", "json")
    assert run.code in (0, 1), run.stderr[-2000:]
    facts = json.loads(run.stdout)["reports"][0]["facts"]
    assert facts["files"] == 20_000 + 20_000, facts  # odd e/f*, and every d/g*; d/old is gone
    # ≈ 4-5 s on a quiet 2-core machine, 11.8 s once beside a loaded CI run; the quadratic
    # code ran past 120 s. The bound separates the two with room for a busy machine.
    assert run.seconds < FLOOD_SECONDS and run.peak_mib < 200, (run.seconds, run.peak_mib)
    code = (
        "from pathlib import Path\nfrom distill.oci import read\n"
        f"tree, _ = read.image_tree({str(root)!r}, 'amd64')\n"
        "files = [p for p in tree.nodes if '/' in p]\n"
        "assert len(files) == 40000 and 'd/old' not in tree.nodes and 'e/f1' in tree.nodes "
        "and 'e/f0' not in tree.nodes and 'd/g0' in tree.nodes, len(files)\n"
    )
    run = probe_code(code)
    assert run.code == 0, run.stderr[-2000:]
    assert run.seconds < FLOOD_SECONDS and run.peak_mib < 200, (run.seconds, run.peak_mib)


# -- .debs ------------------------------------------------------------------------------


def _deb(tmp_path: Path, control_tar_gz: bytes, data_tar_gz: bytes) -> Path:
    path = tmp_path / "evil.deb"
    path.write_bytes(
        _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar_gz), ("data.tar.gz", data_tar_gz)])
    )
    return path


_GOOD_CONTROL = gzip.compress(_tar({"./control": Pkg("evil").control().encode()}, ""))
_EXPAND = (
    "import sys\nfrom pathlib import Path\nfrom distill.archive.cache import Cache, sha256_file\n"
    "from distill.assemble.expand import expand\nfrom distill.errors import DistillError\n"
    "try:\n    expand(Cache(Path(sys.argv[1])), Path(sys.argv[2]), sha256_file(Path(sys.argv[2])))\n"
    "except DistillError as e:\n    print('distill: error:', e.one_line(), file=sys.stderr)\n    sys.exit(2)\n"
)


@pytest.mark.parametrize(
    "case, control, data, env, needle",
    [
        (
            "control-pax-bomb",
            lambda: _gz(_pax_bomb()),
            lambda: _gz(_many(1)),
            {},
            "extended header of 1073741824",
        ),
        ("data-pax-bomb", lambda: _GOOD_CONTROL, lambda: _gz(_pax_bomb()), {}, "decompression bomb"),
        (
            "data-entries",
            lambda: _GOOD_CONTROL,
            lambda: _gz(_many(5000)),
            {"DISTILL_MAX_TAR_ENTRIES": "1000"},
            "more than 1000 tar entries",
        ),
        (
            "data-expands",
            lambda: _GOOD_CONTROL,
            lambda: _gz(iter([_header("z", size=8 << 20), b"\0" * (8 << 20)])),
            {"DISTILL_MAX_EXPANDED_MIB": "4"},
            "expands beyond 4 MiB",
        ),
        (
            "control-member-huge",
            lambda: _gz(iter([_header("./control", size=100 << 20), b"\0" * (100 << 20)])),
            lambda: _gz(_many(1)),
            {},
            "more than 67108864",
        ),
    ],
)
def test_hostile_debs_are_refused_with_bounded_memory(
    tmp_path: Path,
    case: str,
    control: Callable[[], bytes],
    data: Callable[[], bytes],
    env: dict[str, str],
    needle: str,
) -> None:
    """A .deb's control and data tars get the same caps as image layers: a PAX bomb in
    control.tar (read whole before), a data.tar that expands past the limit (written
    to the cache whole before: a disk filler), too many entries."""
    deb = _deb(tmp_path, control(), data())
    run = probe_code(_EXPAND, str(tmp_path / "cache"), str(deb), env=env)
    one_line_exit_2(run, needle, "evil.deb", seconds=5)
    assert not list((tmp_path / "cache" / "expanded").glob("*.tar")), "nothing half-written"


def test_a_fifo_in_an_audited_directory_does_not_block(tmp_path: Path) -> None:
    """`distill audit DIR` opened every .yaml file of the tree to see whether it holds
    Kubernetes objects: a FIFO named like one blocked it forever."""
    (tmp_path / "deploy.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nspec: {containers: [{image: a@sha256:" + "0" * 64 + "}]}\n"
    )
    os.mkfifo(tmp_path / "pipe.yaml")
    os.mkfifo(tmp_path / "Dockerfile")
    run = probe("audit", str(tmp_path), "-q", "--format", "json", timeout=30)
    assert run.code in (0, 1), run.stderr
    assert [Path(r["target"]).name for r in json.loads(run.stdout)["reports"]] == ["deploy.yaml"]
