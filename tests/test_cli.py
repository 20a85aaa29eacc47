from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from debrepo import Key, Pkg, Server, spec_yaml

MakeRepo = Callable[..., tuple[Server, Path]]


def run(*args: str, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("DISTILL_MIRROR", None)
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("distill: error:")]
    assert len(lines) == 1, proc.stderr
    assert pattern in lines[0], lines[0]


@pytest.fixture
def project(make_repo: MakeRepo, key: Key, tmp_path: Path) -> tuple[Server, Path]:
    server, _ = make_repo()
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.yaml").write_text(spec_yaml(server.url, key.keyring, ["app", "base-files"]))
    return server, work


def test_lock_writes_a_complete_lockfile(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    proc = run("lock", "app.yaml", cwd=work, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert "pruned: base-files Pre-Depends awk" in proc.stdout
    assert "pruned: tzdata Depends debconf (>= 0.5) | debconf-2.0" in proc.stdout
    lock = json.loads((work / "app.lock.json").read_text())
    pkgs = {p["name"]: p for p in lock["archs"]["amd64"]["packages"]}
    assert set(pkgs) == {"app", "base-files", "gcc-base", "libc6", "libgcc-s1", "tzdata"}
    p = pkgs["libc6"]
    assert p["version"] == "2.41-1" and p["architecture"] == "amd64" and p["suite"] == "stable"
    assert len(p["sha256"]) == 64 and p["size"] > 0 and p["filename"].startswith("pool/main/l/libc6/")
    assert len(lock["spec_sha256"]) == 64
    assert {e["relation"] for e in lock["archs"]["amd64"]["pruned"]} == {
        "awk",
        "debconf (>= 0.5) | debconf-2.0",
    }


def test_check_detects_a_changed_spec(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    assert run("lock", "app.yaml", "--check", cwd=work, cache=cache).returncode == 0
    spec = work / "app.yaml"
    spec.write_text(spec.read_text().replace("  - base-files\n", "  - base-files\n  - mawk\n"))
    assert_one_line_error(run("lock", "app.yaml", "--check", cwd=work, cache=cache), "out of date")
    assert_one_line_error(run("fetch", "app.yaml", "--locked", cwd=work, cache=cache), "out of date")


def test_why_explains_and_names_pruned_edges(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    proc = run("why", "app.yaml", "gcc-base", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("app 1.0") and "libc6" in lines[2] and "libgcc-s1" in lines[3]
    assert lines[4].strip().startswith("gcc-base 14.2-1")
    proc = run("why", "app.yaml", "mawk", "--offline", cwd=work, cache=cache)
    assert proc.returncode == 0 and "base-files Pre-Depends awk" in proc.stdout
    # not in the archive at all: one error line with the close names
    assert_one_line_error(
        run("why", "app.yaml", "tzdat", "--offline", cwd=work, cache=cache),
        "tzdat is not in the amd64 archive (the spec's suites): no package and nothing provides it "
        "(hint: did you mean tzdata?)",
    )
    # in the archive, not pulled in: an answer, not an error
    proc = run("why", "app.yaml", "perl-base", "--offline", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "perl-base 5.40 is in the amd64 archive, not in the image: nothing in the image depends on it\n"
    )


def test_why_answers_for_each_architecture(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    both = [
        Pkg(n, "1.0", arch=a, depends=d) for a in ("amd64", "arm64") for n, d in (("app", "lib"), ("lib", ""))
    ]
    server, _ = make_repo({"stable": [*both, Pkg("amdtool", "2.0"), Pkg("docs", "1.0", arch="all")]})
    work = tmp_path / "w"
    work.mkdir()
    spec = spec_yaml(server.url, key.keyring, ["app"]).replace("archs: [amd64]", "archs: [amd64, arm64]")
    (work / "app.yaml").write_text(spec)
    cache = tmp_path / "cache"
    proc = run("why", "app.yaml", "lib", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "lib is in the amd64 image because:" in proc.stdout
    assert "lib is in the arm64 image because:" in proc.stdout
    proc = run("why", "app.yaml", "docs", "--offline", cwd=work, cache=cache)
    assert proc.stdout.splitlines() == [
        f"docs 1.0 is in the {a} archive, not in the image: nothing in the image depends on it"
        for a in ("amd64", "arm64")
    ]
    proc = run("why", "app.yaml", "amdtool", "--offline", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "amdtool 2.0 is in the amd64 archive, not in the image: nothing in the image depends on it",
        "amdtool is not in the arm64 archive: no package and nothing provides it "
        "(check the name and the spec's suites)",
    ]
    # --arch narrows the answer to one architecture
    proc = run("why", "app.yaml", "lib", "--arch", "arm64", "--offline", cwd=work, cache=cache)
    assert proc.returncode == 0 and "arm64 image" in proc.stdout and "amd64" not in proc.stdout
    assert_one_line_error(
        run("why", "app.yaml", "amdtol", "--offline", cwd=work, cache=cache),
        "amdtol is not in the amd64, arm64 archive (the spec's suites)",
    )


def test_fetch_locked_downloads_and_verifies(project: tuple[Server, Path], tmp_path: Path) -> None:
    server, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    proc = run("fetch", "app.yaml", "--locked", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "6 packages verified in the cache (6 downloaded" in proc.stdout
    assert len(list((cache / "distill/debs").glob("*.deb"))) == 6
    server.close()
    proc = run("fetch", "app.yaml", "--locked", "--offline", cwd=work, cache=cache)
    assert proc.returncode == 0 and "(0 downloaded" in proc.stdout


def test_offline_lock_from_warm_cache(project: tuple[Server, Path], tmp_path: Path) -> None:
    server, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    first = (work / "app.lock.json").read_text()
    server.close()
    assert run("lock", "app.yaml", "--offline", cwd=work, cache=cache).returncode == 0
    assert (work / "app.lock.json").read_text() == first


@pytest.mark.parametrize(
    ("edit", "args", "message"),
    [
        (lambda s: s + "bogus: [\n", (), "invalid YAML"),
        (lambda s: s + "pakages: [x]\n", (), "unknown field 'pakages'"),
        (lambda s: s.replace("debian13", "debian11"), (), "distro: Input should be"),
        (lambda s: s, ("--arch", "sparc"), "unknown architecture 'sparc'"),
        (lambda s: s, ("--distro", "debian9"), "invalid choice"),
        (lambda s: s.replace("  - app\n", "  - app\n  - ap\n"), (), "unknown package 'ap'"),
        (lambda s: s.replace("  - app\n", "  - app (>= 9)\n"), (), "cannot satisfy 'app (>= 9)'"),
        (lambda s: s.replace("keyring: [", "keyring: [/nonexistent/key.gpg, "), (), "does not exist"),
        (lambda s: s.replace("http://127.0.0.1:", "http://127.0.0.1:1/x"), (), "--offline"),
        (lambda s: s, ("--offline",), "the cache has no InRelease"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    project: tuple[Server, Path],
    tmp_path: Path,
    edit: Callable[[str], str],
    args: tuple[str, ...],
    message: str,
) -> None:
    _, work = project
    spec = work / "app.yaml"
    spec.write_text(edit(spec.read_text()))
    proc = run("lock", "app.yaml", *args, cwd=work, cache=tmp_path / "cache")
    if message == "invalid choice":
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    else:
        assert_one_line_error(proc, message)
    assert not (work / "app.lock.json").exists()
    assert not list(work.glob(".*tmp"))


def test_failed_lock_leaves_the_old_lockfile(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    before = (work / "app.lock.json").read_bytes()
    spec = work / "app.yaml"
    spec.write_text(spec.read_text().replace("  - app\n", "  - app (>= 9)\n"))
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 2
    assert (work / "app.lock.json").read_bytes() == before


def test_unwritable_lock_path_is_a_clear_error(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    proc = run("lock", "app.yaml", "-o", "/proc/distill.lock.json", cwd=work, cache=tmp_path / "cache")
    assert_one_line_error(proc, "cannot write /proc/distill.lock.json")


def test_help_and_schema(tmp_path: Path) -> None:
    proc = run("--help", cwd=tmp_path, cache=tmp_path)
    assert proc.returncode == 0 and "lock" in proc.stdout and "why" in proc.stdout
    proc = run("lock", "--help", cwd=tmp_path, cache=tmp_path)
    assert "--offline" in proc.stdout and "--mirror" in proc.stdout
    proc = run("schema", cwd=tmp_path, cache=tmp_path)
    assert json.loads(proc.stdout)["title"] == "distill image spec"
    assert run(cwd=tmp_path, cache=tmp_path).returncode == 2


def test_json_summary(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    proc = run("lock", "app.yaml", "--json", "-q", cwd=work, cache=tmp_path / "cache")
    doc = json.loads(proc.stdout)
    assert "libc6=2.41-1" in doc["archs"]["amd64"]["packages"]


def test_versioned_request_picks_from_updates_suite(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo({"stable": [Pkg("lib", "1.0-1")], "stable-updates": [Pkg("lib", "1.0-1+u1")]})
    work = tmp_path / "w"
    work.mkdir()
    (work / "s.yaml").write_text(
        spec_yaml(server.url, key.keyring, ["lib"], suites="[stable, stable-updates]")
    )
    assert run("lock", "s.yaml", cwd=work, cache=tmp_path / "c").returncode == 0
    p = json.loads((work / "s.lock.json").read_text())["archs"]["amd64"]["packages"][0]
    assert (p["version"], p["suite"]) == ("1.0-1+u1", "stable-updates")


def test_lock_for_some_archs_and_fetch_checks_them(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    spec = work / "app.yaml"
    spec.write_text(spec.read_text().replace("archs: [amd64]", "archs: [amd64, arm64]"))
    assert run("lock", "app.yaml", "--arch", "amd64", cwd=work, cache=cache).returncode == 0
    assert run("fetch", "app.yaml", "--locked", "--arch", "amd64", cwd=work, cache=cache).returncode == 0
    assert_one_line_error(run("fetch", "app.yaml", "--locked", cwd=work, cache=cache), "has no arm64 section")


def _bash_complete(line: str, cwd: Path) -> list[str]:
    """What bash offers for LINE<TAB>, through the script `distill completion bash` prints."""
    words = line.split(" ")
    script = (
        'eval "$(distill completion bash)"\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        f"COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
        '_python_argcomplete distill; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return [w.strip() for w in proc.stdout.splitlines() if w.strip()]


def test_shell_completion_of_commands_flags_builtins_and_specs(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("name: x\n")
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "deploy").mkdir()
    assert _bash_complete("distill bu", tmp_path) == ["build"]
    assert _bash_complete("distill build py", tmp_path) == ["python3"]
    offered = _bash_complete("distill lock ", tmp_path)
    assert {"static", "java", "nodejs", "python3", "app.yaml", "deploy/"} <= set(offered)
    assert "notes.txt" not in offered  # spec files only
    assert sorted(_bash_complete("distill build app.yaml --arch arm", tmp_path)) == [
        "arm64",
        "armel",
        "armhf",
    ]
    assert _bash_complete("distill build app.yaml --distro debian1", tmp_path) == ["debian13", "debian12"]
    assert _bash_complete("distill audit x --off", tmp_path) == ["--offline"]
    # zsh and fish get their own scripts, answered by the same protocol
    for shell, mark in (("zsh", "#compdef distill"), ("fish", "complete --command distill")):
        proc = run("completion", shell, cwd=tmp_path, cache=tmp_path)
        assert proc.returncode == 0 and mark in proc.stdout, proc.stdout[:300]
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "fish", "_ARGCOMPLETE_IFS": "\n",
           "COMP_LINE": "distill cache ", "COMP_POINT": "14", "_ARGCOMPLETE_STDOUT_FILENAME": str(tmp_path / "out")}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "distill"], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert proc.returncode == 0
    assert {"verify", "prune"} <= {w.split("\t")[0] for w in (tmp_path / "out").read_text().split("\n")}


def test_output_onto_a_fifo_or_device_is_written_to_not_replaced(tmp_path: Path) -> None:
    """``-o /dev/null`` once turned /dev/null into a regular file (an atomic write renames
    a temporary file over its target). A FIFO or character device named by -o is written
    to as it is, by every command that writes a user's output file; a regular file is
    still replaced atomically."""
    import stat
    import threading

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM debian:13\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    for args in (["schema"], ["audit", str(dockerfile), "--format", "json"]):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda g=got, f=fifo: g.append(f.read_bytes()), daemon=True)
        reader.start()
        proc = run(*args, "-o", str(fifo), cwd=tmp_path, cache=tmp_path / "cache")
        # Replaced, the FIFO is gone with the reader blocked on it (a daemon thread).
        assert stat.S_ISFIFO(fifo.lstat().st_mode), f"{args}: the FIFO was replaced by a file"
        reader.join(timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert got and json.loads(got[0]), args  # and what it carried is the whole document
        fifo.unlink()
        out = tmp_path / "out.json"
        out.write_text("old")
        assert run(*args, "-o", str(out), cwd=tmp_path, cache=tmp_path / "cache").returncode == 0
        assert json.loads(out.read_text()) and stat.S_ISREG(out.lstat().st_mode)


def test_each_command_line_builds_only_its_familys_parser() -> None:
    """main() registers the one family a command belongs to (start-up time): the table it
    goes by must name every command the families register, each with its own family."""
    import argparse

    from distill.cli import COMMANDS, build_parser

    def commands(parser: argparse.ArgumentParser) -> set[str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    assert commands(build_parser()) == set(COMMANDS)
    for command in COMMANDS:
        assert command in commands(build_parser(command)), command
    # A command line's own parser is what it runs with: flags and help as with all of them.
    proc = run("push", "--help", cwd=Path.cwd(), cache=Path.cwd())
    assert proc.returncode == 0 and "--chunk-size" in proc.stdout
    proc = run("no-such-command", cwd=Path.cwd(), cache=Path.cwd())
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "verify-attestation" in proc.stderr


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    """`distill … | head`: the pipe closes before the output is written; distill stops
    quietly with SIGPIPE's status (it printed 'distill: error: Broken pipe' before)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill", "schema"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == "", err
