from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from debrepo import Pkg, _ar, _tar, make_deb
from distill.debian.deb import DebFormatError, open_deb


def test_reads_control_md5sums_and_data(tmp_path: Path) -> None:
    pkg = Pkg(
        "hello",
        "2.1-1",
        depends="libc6",
        files={"./usr/bin/hello": b"\x7fELF...", "./etc/hello.conf": b"x=1\n"},
    )
    deb = tmp_path / "hello.deb"
    deb.write_bytes(make_deb(pkg))
    d = open_deb(deb)
    control = d.control()
    assert control.fields["Package"] == "hello" and control.fields["Depends"] == "libc6"
    conf_md5 = hashlib.md5(b"x=1\n").hexdigest()
    assert f"{conf_md5}  etc/hello.conf".encode() in control.md5sums
    files = {info.name: data for info, data in d.data()}
    assert files["./usr/bin/hello"] == b"\x7fELF..."


def test_zstd_members(tmp_path: Path) -> None:
    control = zstandard.ZstdCompressor().compress(_tar({"./control": Pkg("z").control().encode()}, ""))
    data = zstandard.ZstdCompressor().compress(_tar({"./usr/share/z": b"zz"}, ""))
    deb = tmp_path / "z.deb"
    deb.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.zst", control), ("data.tar.zst", data)]))
    d = open_deb(deb)
    assert d.control().fields["Package"] == "z"
    assert [(i.name, c) for i, c in d.data()] == [("./usr/share/z", b"zz")]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b"not an ar file",
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b.replace(b"debian-binary", b"debian-binarz"),
    ],
)
def test_malformed_debs_are_clear_errors(tmp_path: Path, mangle: object) -> None:
    deb = tmp_path / "bad.deb"
    deb.write_bytes(mangle(make_deb(Pkg("bad"))))  # type: ignore[operator]
    with pytest.raises(DebFormatError):
        d = open_deb(deb)
        d.control()
        list(d.data())


def test_corrupt_data_tar_is_a_clear_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(tarfile.TarInfo("./control"), io.BytesIO(b""))
    deb = tmp_path / "c.deb"
    deb.write_bytes(
        _ar([("debian-binary", b"2.0\n"), ("control.tar.gz", buf.getvalue()), ("data.tar.xz", b"garbage")])
    )
    with pytest.raises(DebFormatError):
        list(open_deb(deb).data())
