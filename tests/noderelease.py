"""Generated Node.js release directories (the layout of the project's dist/), signed with a
generated key and served on 127.0.0.1 by debrepo.Server: index.json, and per release
SHASUMS256.txt, its detached signature SHASUMS256.txt.sig and the linux archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from debrepo import Key

NODE_ARCH = {"amd64": "x64", "arm64": "arm64"}


def made_up_abi(version: str) -> int:
    """The NODE_MODULE_VERSION generated archives declare: no real release's (22 -> 522),
    so a test sees that distill read it from the archive."""
    return 500 + int(version.split(".")[0])


def version_header(version: str, abi: int) -> bytes:
    """include/node/node_version.h as a release has it (the embedder's override first)."""
    major, minor, patch = version.split(".")
    return (
        f"#define NODE_MAJOR_VERSION {major}\n#define NODE_MINOR_VERSION {minor}\n"
        f"#define NODE_PATCH_VERSION {patch}\n#define NODE_VERSION_IS_RELEASE 1\n"
        "#if defined(NODE_EMBEDDER_MODULE_VERSION)\n"
        "#define NODE_MODULE_VERSION NODE_EMBEDDER_MODULE_VERSION\n#else\n"
        f"#define NODE_MODULE_VERSION {abi}\n#endif\n"
    ).encode()


def archive(
    version: str, node_arch: str, files: dict[str, bytes] | None = None, *, dirs: bool = True
) -> bytes:
    """A ``node-vX-linux-ARCH.tar.xz`` laid out as the official ones are (one top directory,
    the builder's uid, npm beside node): ``files`` are paths under the top directory;
    ``dirs=False`` lists no directories (as some repacks do)."""
    top = f"node-v{version}-linux-{node_arch}"
    members = files or {
        "bin/node": f"#!generated node {version} {node_arch}\n".encode(),
        "lib/node_modules/npm/bin/npm-cli.js": b"// npm\n",
        "include/node/node.h": b"/* headers */\n",
        "include/node/node_version.h": version_header(version, made_up_abi(version)),
        "share/man/man1/node.1": b".TH NODE 1\n",
        "LICENSE": b"Node.js is licensed for use as follows ...\n",
        "CHANGELOG.md": b"# changes\n",
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        made: set[str] = set()
        for path in sorted(members):
            parts = path.split("/")[:-1]
            for i in range(len(parts)):
                d = "/".join([top, *parts[: i + 1]])
                if d not in made and dirs:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o775, 1000, 1000
                    tf.addfile(info)
            data = members[path]
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.uid, info.gid, info.mtime = len(data), 1000, 1000, 1_700_000_000
            info.mode = 0o775 if path.startswith("bin/") else 0o664
            tf.addfile(info, io.BytesIO(data))
        for name, target in (("npm", "../lib/node_modules/npm/bin/npm-cli.js"), ("npx", "npm")):
            info = tarfile.TarInfo(f"{top}/bin/{name}")
            info.type, info.linkname, info.uid = tarfile.SYMTYPE, target, 1000
            tf.addfile(info)
    return buf.getvalue()


def write_release(
    root: Path,
    version: str,
    key: Key,
    archives: dict[str, bytes] | None = None,
    *,
    listed: dict[str, bytes] | None = None,
    dirs: bool = True,
) -> dict[str, str]:
    """Release ``version`` under ``root``: arch -> archive (default: generated for amd64 and
    arm64). ``listed`` overrides what SHASUMS256.txt says of a file (to make a mismatch).
    Returns file -> sha256. index.json is rewritten to list every release under root."""
    archives = (
        archives
        if archives is not None
        else {a: archive(version, n, dirs=dirs) for a, n in NODE_ARCH.items()}
    )
    d = root / f"v{version}"
    d.mkdir(parents=True, exist_ok=True)
    sums: dict[str, str] = {}
    for arch, data in archives.items():
        name = f"node-v{version}-linux-{NODE_ARCH[arch]}.tar.xz"
        (d / name).write_bytes(data)
        sums[name] = hashlib.sha256((listed or {}).get(name, data)).hexdigest()
    text = "".join(f"{h}  {n}\n" for n, h in sorted(sums.items())).encode()
    (d / "SHASUMS256.txt").write_bytes(text)
    (d / "SHASUMS256.txt.sig").write_bytes(key.detach_sign(text))
    index = []
    for rel in sorted(root.glob("v*/SHASUMS256.txt")):
        files = [
            "linux-" + line.split()[1].split("-linux-")[1].removesuffix(".tar.xz")
            for line in rel.read_text().splitlines()
        ]
        index.append({"version": rel.parent.name, "files": files, "lts": False})
    (root / "index.json").write_text(json.dumps(index))
    return sums


def node_binary(version: str, abi: int, at: int = (1 << 20) - 12) -> bytes:
    """A stand-in node binary holding what a release build compiles in: process.config
    (configure's config.gypi, with node_module_version) and process.release's headersUrl;
    ``at`` puts node_module_version across a 1 MiB boundary (distill reads in chunks)."""
    config = f'{{"target_defaults": {{}}, "variables": {{"libdir": "lib", "node_module_version": {abi}, "shlib_suffix": "so.{abi}"}}}}'.encode()
    head = b"\x7fELF generated node\n"
    pad = at - len(head) - config.index(b'"node_module_version"')
    url = f"https://mirror.invalid/dist/v{version}/node-v{version}-headers.tar.gz".encode()
    return head + b"\0" * pad + config + b"\0" * 4096 + url + b"\0"
