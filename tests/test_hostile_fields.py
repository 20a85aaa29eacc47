"""Issue 17 E14/E15 and the file-reading part of D13: fields that end up in files are
validated with their position; errors never print a file's contents; special files
and crafted PEM input are refused at once."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from distill.app import python as app_python
from distill.assemble import pem, system
from distill.assemble.tree import Tree
from distill.errors import DistillError, SpecError, UnsafeEntryError
from distill.progress import Reporter
from distill.spec.load import load_spec
from distill.spec.model import Accounts, GroupAccount, PathEntry, UserAccount
from hostile import finishes_within, one_error_line
from test_cli import run

SECRET = "root:$6$SECRETHASH$abcdefghijklmnop:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


def distill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd, cache=cwd / ".cache")


# -- E14: fields that end up in files -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # the reproduced injection: a second uid-0 account through the shell
        (
            'accounts:\n  users:\n    - {name: app, uid: 1000, shell: "/bin/x\\nroot2:x:0:0::/:/bin/sh"}\n',
            "s.yaml:4:37: accounts.users.0.shell:",
        ),
        (
            'accounts:\n  users:\n    - {name: app, uid: 1000, home: "/home/a:b"}\n',
            "s.yaml:4:36: accounts.users.0.home:",
        ),
        (
            'accounts:\n  users:\n    - {name: app, uid: 1000, home: "/home/../etc"}\n',
            "s.yaml:4:36: accounts.users.0.home:",
        ),
        (
            'accounts:\n  users:\n    - {name: app, uid: 1000, home: "relative"}\n',
            "s.yaml:4:36: accounts.users.0.home:",
        ),
        (
            'accounts:\n  users:\n    - {name: "app\\nroot2", uid: 1000}\n',
            "s.yaml:4:14: accounts.users.0.name:",
        ),
        ("accounts:\n  users:\n    - {name: App, uid: 1000}\n", "s.yaml:4:14: accounts.users.0.name:"),
        (
            f"accounts:\n  users:\n    - {{name: {'a' * 33}, uid: 1000}}\n",
            "s.yaml:4:14: accounts.users.0.name:",
        ),
        ("accounts:\n  users:\n    - {name: 'app:x', uid: 1000}\n", "s.yaml:4:14: accounts.users.0.name:"),
        (
            'accounts:\n  groups:\n    - {name: g, gid: 1000, members: [a, "b\\nroot2:x:0:"]}\n',
            "s.yaml:4:41: accounts.groups.0.members.1:",
        ),
        # Arabic-Indic digits: int() reads them as 1000, the spec must not
        (
            'accounts:\n  users:\n    - {name: app, uid: "\u0661\u0660\u0660\u0660"}\n',
            "s.yaml:4:24: accounts.users.0.uid:",
        ),
        (
            "accounts:\n  users:\n    - {name: app, uid: 1000, gid: -1}\n",
            "s.yaml:4:35: accounts.users.0.gid:",
        ),
        ('user: "\u0661\u0660\u0660\u0660"\n', "s.yaml:2:7: user:"),
        ('exposed_ports: ["\u0668\u0660"]\n', "s.yaml:2:16: exposed_ports:"),
        ('paths: [{path: /d, type: directory, mode: "\u0667\u0665\u0665"}]\n', "s.yaml:2:43: paths.0.mode:"),
        ('env: {"A=B": x}\n', "s.yaml:2:7: env:"),
        ('env: {"A\\nB": x}\n', "s.yaml:2:7: env:"),
        ('env: {"A\\0B": x}\n', "s.yaml:2:7: env:"),
        ('env: {A: "x\\0y"}\n', "s.yaml:2:10: env.A:"),
        ('paths: [{path: "/etc/x\\0y", type: directory}]\n', "s.yaml:2:16: paths.0.path:"),
        ('paths: [{path: /l, type: symlink, target: "/a\\0b"}]\n', "s.yaml:2:43: paths.0.target:"),
        ('workdir: "/app\\0x"\n', "s.yaml:2:10: workdir:"),
        ('entrypoint: [/bin/x, "a\\0b"]\n', "s.yaml:2:22: entrypoint.1:"),
        ('cmd: ["\\0"]\n', "s.yaml:2:7: cmd.0:"),
    ],
)
def test_injection_is_refused_with_field_and_position(tmp_path: Path, body: str, where: str) -> None:
    (tmp_path / "s.yaml").write_text("packages: [a]\n" + body, encoding="utf-8")
    line = one_error_line(distill("build", "s.yaml", "--offline", "-o", "out.tar", cwd=tmp_path))
    assert f"distill: error: {tmp_path / 's.yaml'}:" in line or line.startswith("distill: error: s.yaml:")
    assert where in line, line
    assert "\x00" not in line and "root2" not in line
    assert not (tmp_path / "out.tar").exists()


def test_valid_accounts_still_load(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "packages: [a]\nuser: '1000:1000'\nexposed_ports: [8080, '53/udp']\nenv: {LOG_LEVEL: info}\n"
        "accounts:\n  users:\n    - {name: app, uid: '1000', home: /srv/app, shell: /bin/sh}\n"
        "    - {name: build$, uid: 1001, gid: 1000}\n"
        "  groups:\n    - {name: web, gid: 2000, members: [app, build$]}\n"
        "paths: [{path: /d, type: directory, mode: '0o750'}]\n"
    )
    spec, _ = load_spec(tmp_path / "s.yaml")
    assert spec.accounts.users[0].uid == 1000 and spec.accounts.users[1].name == "build$"
    assert spec.accounts.groups[0].members == ["app", "build$"]


def _passwd(tree: Tree) -> str:
    node = tree.get("etc/passwd")
    assert node is not None
    return node.read().decode()


@pytest.mark.parametrize(
    "user",
    [
        {"shell": "/bin/x\nroot2:x:0:0::/:/bin/sh"},
        {"home": "/home/a:0:0"},
        {"name": "app\nroot2"},
        {"name": "a:b"},
        {"shell": "/bin/sh\0"},
        {"home": "/home/../etc"},
    ],
)
def test_passwd_writer_refuses_injection_from_any_caller(user: dict[str, str]) -> None:
    # model_construct skips the spec's validation: the writer must refuse on its own.
    fields = {"name": "app", "uid": 1000, "gid": None, "home": None, "shell": "/sbin/nologin", **user}
    accounts = Accounts.model_construct(users=[UserAccount.model_construct(**fields)], groups=[])
    tree = Tree()
    with pytest.raises(UnsafeEntryError, match="/etc/passwd"):
        system.accounts(tree, accounts, 0)
    assert tree.get("etc/passwd") is None


def test_group_writer_refuses_injection() -> None:
    for members in (["a\nroot2:x:0:"], ["a,b"], ["a:b"]):
        group = GroupAccount.model_construct(name="g", gid=1000, members=members)
        accounts = Accounts.model_construct(users=[], groups=[group])
        with pytest.raises(UnsafeEntryError, match="/etc/group"):
            system.accounts(Tree(), accounts, 0)
    tree = Tree()
    system.accounts(tree, Accounts(users=[UserAccount(name="app", uid=1000)]), 0)
    assert _passwd(tree).splitlines()[-1] == "app:x:1000:1000:app:/home/app:/sbin/nologin"


def test_status_d_writer_refuses_bad_names_and_extra_paragraphs() -> None:
    with pytest.raises(UnsafeEntryError):
        system.status_d(Tree(), "../../etc/passwd", b"Package: x\n", b"", 0)
    with pytest.raises(UnsafeEntryError, match="one paragraph"):
        system.status_d(Tree(), "xy", b"Package: xy\n\nPackage: evil\nVersion: 1\n", b"", 0)
    with pytest.raises(UnsafeEntryError, match="line 3 of the control data repeats the field 'source'"):
        system.status_d(Tree(), "xy", b"Package: xy\nSource: a\nsource: b\nVersion: 1\n", b"", 0)
    tree = Tree()
    system.status_d(tree, "libc6", b"Package: libc6\nVersion: 2.41-1\nDescription: x\n Version: 3\n", b"", 0)
    assert tree.get(f"{system.STATUS_D}/libc6") is not None


# -- E15: error messages quote paths and positions, never contents ----------------------


def test_extends_a_secret_file_does_not_print_it(tmp_path: Path) -> None:
    (tmp_path / "shadow").write_text(SECRET)
    (tmp_path / "s.yaml").write_text("extends: shadow\n")
    line = one_error_line(distill("build", "s.yaml", "--offline", cwd=tmp_path))
    assert "SECRETHASH" not in line and "root:" not in line
    assert "shadow:1:1: unknown field" in line


def test_a_secret_file_as_the_spec_does_not_print_it(tmp_path: Path) -> None:
    (tmp_path / "shadow").write_text(SECRET)
    proc = distill("lock", "shadow", "--offline", cwd=tmp_path)
    line = one_error_line(proc)
    assert "SECRETHASH" not in proc.stderr and "shadow:1:1:" in line


@pytest.mark.parametrize(
    "text",
    [
        "SECRETHASH$x: 1\na: 1\n",  # a key that is not a plain name
        "packages: [a]\nprune: {SECRETHASH/x: 1}\n",  # nested
        "x: !<tag:SECRETHASH> 1\n",  # PyYAML quotes the tag
        "x: *SECRETHASH:x\n",  # ... and an undefined alias
        "SECRETHASH$1: 1\nSECRETHASH$1: 2\n",  # ... and a duplicate key
        "env: {SECRETHASH$$: 5}\n",  # a bad value under a key that is not plain
    ],
)
def test_yaml_and_field_errors_do_not_quote_content(tmp_path: Path, text: str) -> None:
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "s.yaml")
    assert "SECRETHASH" not in err.value.one_line()
    assert str(tmp_path / "s.yaml") in err.value.one_line()


def test_plain_unknown_field_is_still_named_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("packages: [a]\npakages: [b]\n")
    with pytest.raises(
        SpecError, match=r"s\.yaml:2:1: unknown field 'pakages' \(did you mean 'packages'\?\)"
    ):
        load_spec(tmp_path / "s.yaml")


def test_pip_error_names_file_and_line_not_its_content(tmp_path: Path) -> None:
    (tmp_path / "shadow").write_text(SECRET)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("-r shadow\n")
    # Refused before pip runs (the line is no requirement distill accepts), by position.
    with pytest.raises(DistillError) as err:
        app_python.install(reqs, "3.13", (2, 41), "amd64", tmp_path / "cache", False, Reporter())
    message = err.value.one_line()
    assert "SECRETHASH" not in message and "root:" not in message
    assert "shadow:1:" in message, message


# -- D13: special files, crafted PEM ------------------------------------------------------


def _returns_quickly(fn: Callable[[], object], fifo: Path) -> BaseException | None:
    """``fn``'s outcome; if it blocks on the FIFO, the FIFO's other end is opened to free it."""

    def unblock() -> None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    return finishes_within(5.0, fn, unblock)


def test_certificates_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    exc = _returns_quickly(lambda: system.ca_bundle(Tree(), [str(fifo)], 0, True), fifo)
    assert isinstance(exc, SpecError) and "not a regular file" in str(exc)


def test_paths_source_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "src"
    os.mkfifo(fifo)
    entry = PathEntry(path="/x", type="file", source=str(fifo))
    exc = _returns_quickly(lambda: system.spec_paths(Tree(), [entry], 0), fifo)
    assert isinstance(exc, SpecError) and "not a regular file" in str(exc)


@pytest.mark.parametrize("as_extends", [False, True])
def test_spec_or_extends_fifo_is_refused_at_once(tmp_path: Path, as_extends: bool) -> None:
    os.mkfifo(tmp_path / "f.yaml")
    (tmp_path / "s.yaml").write_text("extends: f.yaml\npackages: [a]\n")
    start = time.monotonic()
    proc = distill("lock", "s.yaml" if as_extends else "f.yaml", "--offline", cwd=tmp_path)
    line = one_error_line(proc)
    assert "f.yaml: not a regular file" in line
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    "crafted",
    [
        pem.BEGIN + b" " * 400_000,  # one BEGIN, a long whitespace run, no END
        pem.BEGIN + b"\n" + b"\t\n" * 200_000 + b"!",
        (pem.BEGIN + b"\n") * 15_000,  # many BEGINs, no END
        pem.BEGIN + b"\n" + b"A \n" * 120_000 + b"-----END CERTIFICATE----",  # END cut short
        (pem.BEGIN + b"\n" + b"QUJD\n" * 3) * 10_000 + pem.END,  # one END far away
    ],
)
def test_crafted_pem_is_scanned_in_linear_time(crafted: bytes) -> None:
    assert len(crafted) > 300_000
    start = time.monotonic()
    assert pem.pem_certificates(crafted) in ([], [b"ABCABCABC"])
    assert time.monotonic() - start < 1.0


def test_pem_scanner_finds_certificates_like_before() -> None:
    block = pem.BEGIN + b"\nQUJD\nREVG\n" + pem.END + b"\n"
    data = b"junk\n" + block + pem.BEGIN + b" not base64 ! " + pem.END + b"\n" + block
    assert pem.pem_certificates(data) == [b"ABCDEF", b"ABCDEF"]
    with pytest.raises(pem.PemError):
        pem.pem_certificates(pem.BEGIN + b"\nQUJ\n" + pem.END)


def test_certificate_without_a_pem_block_is_a_spec_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(pem.BEGIN + b"\n" + b" " * 100_000)
    with pytest.raises(SpecError, match="holds no PEM certificate"):
        system.ca_bundle(Tree(), [str(bad)], 0, True)
