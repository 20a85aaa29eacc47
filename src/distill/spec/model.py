"""The spec model: *what* image to build. Runtime settings (cache, offline, mirror
overrides) are options of the command, never read from here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from distill.debian.relation import Clause, RelationSyntaxError, parse_relations
from distill.distros import ARCHS, DEFAULT_DISTRO, DISTROS, host_arch

ArchName = Literal["amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "riscv64", "s390x"]
DistroName = Literal["debian13", "debian12"]


def _check_relation(item: str) -> str:
    to_clause(item)
    return item


# Fields that end up in files or in the kernel's hands are checked here, at the spec, so
# that the error names the field and its position (issue 17 E14). NUL ends a C string:
# a path or argument with one means something else to the kernel than to distill.
def _no_nul(v: str) -> str:
    if "\0" in v:
        raise ValueError("contains a NUL character")
    return v


NoNul = Annotated[str, AfterValidator(_no_nul)]

# Debian's useradd/groupadd rule (NAME_REGEX without --badname), at most 32 characters;
# spelled out in ASCII so that no other alphabet's letters or digits pass.
_ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]*[$]?", re.ASCII)
MAX_ACCOUNT_NAME = 32


def _account_name(v: str) -> str:
    if len(v) > MAX_ACCOUNT_NAME or not _ACCOUNT_NAME.fullmatch(v):
        raise ValueError(
            f"not a user or group name (lower-case letters, digits, '_' and '-', starting with a "
            f"letter or '_', an optional final '$', at most {MAX_ACCOUNT_NAME} characters)"
        )
    return v


def _account_path(v: str) -> str:
    """A home or shell: one field of /etc/passwd, so no ':' and no line break."""
    if not v.startswith("/") or any(c == ":" or ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        raise ValueError("must be an absolute path without ':' or control characters (newline, NUL)")
    if ".." in v.split("/"):
        raise ValueError("must not contain '..'")
    return v


def _id_number(v: object) -> object:
    """A uid/gid: an integer, or a string of ASCII digits (not True, 1e3, '+1_000' or '١٠٠٠')."""
    if isinstance(v, bool) or (isinstance(v, str) and not re.fullmatch(r"[0-9]{1,10}", v, re.ASCII)):
        raise ValueError("must be a number (ASCII digits)")
    return int(v) if isinstance(v, str) else v


AccountName = Annotated[
    str,
    AfterValidator(_account_name),
    Field(json_schema_extra={"pattern": f"^{_ACCOUNT_NAME.pattern}$", "maxLength": MAX_ACCOUNT_NAME}),
]
AccountPath = Annotated[str, AfterValidator(_account_path), Field(json_schema_extra={"pattern": "^/[^:]*$"})]
# Ids as /etc/passwd and tar headers carry them.
AccountId = Annotated[int, Field(strict=True, ge=0, le=2**31 - 1), BeforeValidator(_id_number)]


def _env_name(v: str) -> str:
    """An environment variable name: ``NAME=value`` is split at the first '='."""
    if not v or "=" in v or any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        raise ValueError("an environment variable name must be non-empty, without '=' or control characters")
    return v


EnvName = Annotated[str, AfterValidator(_env_name)]

# Numbers written as text (ports, uid:gid, modes) are read with int() later, which takes
# any Unicode digit ('١٠٠٠' is 1000): match them in ASCII first.
_PORT = re.compile(r"[0-9]{1,5}(/(tcp|udp|sctp))?", re.ASCII)
_USER = re.compile(r"[0-9]{1,10}(:[0-9]{1,10})?", re.ASCII)
_MODE = re.compile(r"(0o)?[0-7]{1,5}", re.ASCII)

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(_Model):
    """A repository suite. Without ``url``, the default mirror (host apt sources,
    ``--mirror`` or ``DISTILL_MIRROR``) is used."""

    url: str | None = Field(default=None, description="Repository base URL (http or https)")
    suites: list[str] = Field(min_length=1, description="Suites, e.g. [trixie, trixie-updates]")
    components: list[str] = Field(default_factory=lambda: ["main"])

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class PruneSpec(_Model):
    """How dependency edges are pruned (see docs/resolver.md)."""

    defaults: bool = Field(default=True, description="Apply distill's default pruning policy")
    keep: list[str] = Field(
        default_factory=list, description="Names to follow even though the default policy cuts them"
    )


class PathEntry(_Model):
    """A directory, symlink or local file added to the image (in the spec's own layer)."""

    path: NoNul = Field(description="Absolute path inside the image")
    type: Literal["directory", "symlink", "file"]
    source: NoNul | None = Field(
        default=None, description="file: a local file, relative to the spec (inside its directory)"
    )
    content: str | None = Field(default=None, description="file: inline text instead of source")
    target: NoNul | None = Field(
        default=None, description="symlink: where it points (${arch}: the architecture being built)"
    )
    mode: int | str | None = Field(
        default=None, description="Permissions, e.g. 0o755 or '0755' (default 0755 dirs, 0644 files)"
    )
    uid: AccountId = 0
    gid: AccountId = 0

    @field_validator("path")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/") or v.strip("/") == "":
            raise ValueError("must be an absolute path below /")
        if ".." in v.split("/"):
            raise ValueError("must not contain '..'")
        return v

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: int | str | None) -> int | str | None:
        if v is not None:
            parse_mode(v)
        return v

    @model_validator(mode="after")
    def _shape(self) -> PathEntry:
        if self.type == "symlink" and not self.target:
            raise ValueError(f"{self.path}: a symlink needs target")
        if self.type == "file" and (self.source is None) == (self.content is None):
            raise ValueError(f"{self.path}: a file needs exactly one of source or content")
        if self.type == "directory" and (self.source or self.content or self.target):
            raise ValueError(f"{self.path}: a directory takes no source, content or target")
        return self


def parse_mode(v: int | str) -> int:
    """``0o755``, ``493`` or ``'0755'`` -> 0o755."""
    if isinstance(v, str):
        if not _MODE.fullmatch(v):
            raise ValueError("invalid mode (use octal, e.g. '0755')")
        mode = int(v.removeprefix("0o"), 8)
    else:
        mode = v
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode {v!r} is out of range")
    return mode


class UserAccount(_Model):
    name: AccountName
    uid: AccountId
    gid: AccountId | None = Field(default=None, description="Primary group id (default: uid)")
    home: AccountPath | None = Field(default=None, description="Home directory (default /home/NAME, created)")
    shell: AccountPath = "/sbin/nologin"


class GroupAccount(_Model):
    name: AccountName
    gid: AccountId
    members: list[AccountName] = Field(default_factory=list)


class Accounts(_Model):
    """Users and groups added to the standard root, nobody and nonroot."""

    users: list[UserAccount] = Field(default_factory=list)
    groups: list[GroupAccount] = Field(default_factory=list)


class Trim(_Model):
    """What is left out of the image (copyright files are always kept)."""

    docs: bool = Field(default=True, description="/usr/share/doc (except copyright files)")
    man: bool = Field(default=True, description="/usr/share/man")
    info: bool = Field(default=True, description="/usr/share/info")
    lintian: bool = Field(default=True, description="/usr/share/lintian")
    translations: bool = Field(default=True, description="message catalogs (*.mo under /usr/share/locale)")
    ca_sources: bool = Field(
        default=True,
        description="the single certificates under /usr/share/ca-certificates, once they are in the bundle",
    )
    paths: list[str] = Field(
        default_factory=list, description="More glob patterns of image paths to drop, e.g. /usr/share/X/**"
    )


class NodeRelease(_Model):
    """Node.js from the official release archives (not a Debian package; see docs/nodejs.md):
    ``node-vX.Y.Z-linux-ARCH.tar.xz`` under /nodejs, verified against SHASUMS256.txt signed by
    a pinned Node.js release key. The mirror is the command's (--nodejs-mirror or
    DISTILL_NODEJS_MIRROR)."""

    version: str | None = Field(
        default=None,
        description="A major (22: the newest 22.x the mirror lists), major.minor, or exact "
        "(a spec extending one that sets it may leave it out)",
    )
    keyring: list[NoNul] = Field(
        default_factory=list,
        description="Keyring files holding the Node.js release keys (relative to the spec; default "
        "$DISTILL_NODEJS_KEYRING). Only pinned release keys and signers are trusted",
    )
    signers: list[str] = Field(
        default_factory=list,
        description="More primary-key fingerprints trusted to sign SHASUMS256.txt (a mirror that re-signs)",
    )

    @field_validator("version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        from distill.upstream.nodejs import check_version

        return None if v is None else check_version(v)

    @field_validator("signers")
    @classmethod
    def _signers(cls, v: list[str]) -> list[str]:
        from distill.upstream.nodejs import check_fingerprint

        return [check_fingerprint(x) for x in v]


AppKind = Literal["python", "node", "java", "binary"]


class AppSpec(_Model):
    """An application put on the image (see docs/apps.md). Paths are relative to the
    spec's directory and must stay inside it."""

    kind: AppKind = Field(description="python | node | java | binary")
    source: NoNul = Field(
        default=".",
        description="python/node: the project directory; java: the jar; binary: the executable",
    )
    dest: NoNul = Field(default="/app", description="Where the application lands in the image")
    requirements: NoNul | None = Field(
        default=None,
        description="python: a pip requirements file (default: requirements.txt in source, if there)",
    )
    entrypoint: list[NoNul] | None = Field(
        default=None,
        description="python: what follows python3 (e.g. ['-m', 'myapp'] or ['app.py']); "
        "node: the script (default: package.json's main, else server.js or index.js)",
    )
    args: list[NoNul] | None = Field(default=None, description="Program arguments (the image's CMD)")
    exclude: list[str] = Field(
        default_factory=list,
        description="More glob patterns of source files to leave out (.git, __pycache__, "
        "node_modules, virtualenvs and the spec with its lock are always left out)",
    )
    main_class: str | None = Field(default=None, description="java: overrides the jar's Main-Class")
    libs: list[NoNul] = Field(default_factory=list, description="java: dependency jars (glob patterns)")
    layout: Literal["exploded", "jar"] = Field(
        default="exploded",
        description="java: 'exploded' (Jib-style layers: libs, resources, classes) or 'jar' (java -jar)",
    )
    jvm_flags: list[NoNul] = Field(default_factory=list, description="java: JVM options, e.g. ['-Xmx256m']")

    @field_validator("dest")
    @classmethod
    def _dest(cls, v: str) -> str:
        if not v.startswith("/") or v.strip("/") == "" or ".." in v.split("/"):
            raise ValueError("must be an absolute path below / without '..'")
        return "/" + v.strip("/")

    @model_validator(mode="after")
    def _fits(self) -> AppSpec:
        java_only = {"main_class": self.main_class, "libs": self.libs, "jvm_flags": self.jvm_flags}
        if self.kind != "java":
            for name, value in java_only.items():
                if value:
                    raise ValueError(f"{name} is for kind java, not {self.kind}")
        if self.requirements and self.kind != "python":
            raise ValueError(f"requirements is for kind python, not {self.kind}")
        if self.entrypoint is not None and self.kind not in ("python", "node"):
            raise ValueError(
                f"entrypoint is for kinds python and node (kind {self.kind} computes it; use args)"
            )
        return self


@dataclass(frozen=True)
class BaseImageRef:
    """An image a spec's app goes on (``from:``): as written, and as an image source
    target (:func:`distill.oci.source.open_source`; a path made absolute)."""

    text: str
    target: str

    @property
    def is_registry(self) -> bool:
        return self.target.startswith("docker://")


class Spec(_Model):
    """A distill image spec: the packages, and the image made of them."""

    extends: NoNul | list[NoNul] | None = Field(
        default=None,
        description="Spec(s) this one builds on: a built-in name (static, base, ...) or a path "
        "relative to this file. Packages, exclude and prune.keep add up; other fields override.",
    )
    from_: NoNul | None = Field(
        default=None,
        alias="from",
        description="The image an app goes on: a built-in flavor or a spec path (the same as "
        "extends with one entry), or an image: docker://HOST/REPO:TAG (or @sha256:...), "
        "podman:NAME, docker:NAME, oci:DIR[:REF] (an OCI image layout), oci-archive:FILE, "
        "docker-archive:FILE. Default for an app: python3, nodejs, java, or for a binary "
        "static/base/cc as its ELF needs",
    )
    app: AppSpec | None = Field(default=None, description="An application to put on the image")
    name: str | None = Field(default=None, description="A name for the image")
    distro: DistroName = Field(default=cast(DistroName, DEFAULT_DISTRO), description="Debian release")
    archs: list[ArchName] = Field(default_factory=lambda: [host_arch()], min_length=1)  # type: ignore[arg-type]
    sources: list[SourceSpec] | None = Field(
        default=None, description="Repositories; default: the distro's suites on the default mirror"
    )
    keyring: list[NoNul] | None = Field(
        default=None, description="OpenPGP keyring files (binary or armored); paths relative to the spec"
    )
    packages: list[Annotated[str, AfterValidator(_check_relation)]] = Field(
        default_factory=list,
        description="Debian relations: 'name', 'name (>= 1.2)', 'name=1.2-3' (exact), 'a | b'",
    )
    exclude: list[str] = Field(default_factory=list, description="Packages never to install")
    prune: PruneSpec = Field(default_factory=PruneSpec)
    nodejs: NodeRelease | None = Field(
        default=None, description="Node.js from its official release archives, under /nodejs"
    )

    # The image (OCI config and extra files).
    user: str | None = Field(default=None, description="User to run as: a numeric uid[:gid] (default 0)")
    workdir: NoNul | None = Field(default=None, description="Working directory (default /)")
    entrypoint: list[NoNul] | None = None
    cmd: list[NoNul] | None = None
    env: dict[EnvName, NoNul] = Field(
        default_factory=dict,
        description="Environment (PATH and SSL_CERT_FILE set); ${arch} in a value is the architecture built",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict, description="Manifest annotations")
    exposed_ports: list[str | int] = Field(default_factory=list, description="e.g. 8080 or '53/udp'")
    stop_signal: str | None = Field(default=None, description="e.g. SIGTERM")
    paths: list[PathEntry] = Field(default_factory=list)
    certificates: list[NoNul] = Field(
        default_factory=list,
        description="Extra CA certificates (PEM files relative to the spec) for the bundle",
    )
    accounts: Accounts = Field(default_factory=Accounts)
    trim: Trim = Field(default_factory=Trim)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        # An image name (the OCI reference grammar's path components), never a path.
        if v is not None and (len(v) > 255 or not _IMAGE_NAME.fullmatch(v)):
            raise ValueError(
                "must be an image name: lowercase letters and digits, separated by '.', '_', '__' "
                "or dashes, in '/'-separated components (e.g. 'team/app'), never a path"
            )
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and not _USER.fullmatch(v):
            raise ValueError(
                "must be numeric (uid or uid:gid), e.g. '65532': Kubernetes runAsNonRoot rejects names"
            )
        return v

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError("must be an absolute path")
        return v

    @field_validator("exposed_ports")
    @classmethod
    def _ports(cls, v: list[str | int]) -> list[str | int]:
        for p in v:
            if not _PORT.fullmatch(str(p)) or not 0 < int(str(p).split("/")[0]) < 65536:
                raise ValueError(f"{p!r} is not a port (e.g. 8080 or '53/udp')")
        return v

    @field_validator("archs")
    @classmethod
    def _archs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists an architecture twice")
        return v

    # The composition chain, root first, this spec last: each level's spec with
    # everything below it merged in (set by the loader; one level without extends).
    _levels: list[tuple[str, Spec]] = PrivateAttr(default_factory=list)

    # ``from: IMAGE``: the app goes on that image (a registry, podman, a layout, an archive).
    _base_image: BaseImageRef | None = PrivateAttr(default=None)

    @property
    def base_image(self) -> BaseImageRef | None:
        return self._base_image

    @property
    def levels(self) -> list[tuple[str, Spec]]:
        return self._levels or [(self.name or "image", self)]

    def requests(self) -> list[Clause]:
        return [to_clause(item) for item in self.packages]


ARCH_PLACEHOLDER = "${arch}"


def expand_arch(value: str, arch: str) -> str:
    """``${arch}`` in an ``env`` value or a symlink's ``target``: the Debian architecture
    being built (amd64, arm64, ...), for paths such as /usr/lib/jvm/java-25-openjdk-amd64."""
    return value.replace(ARCH_PLACEHOLDER, arch)


def to_clause(item: str) -> Clause:
    """A package entry as a relation clause; ``name=version`` is an exact pin."""
    text = item.strip()
    if "=" in text and "(" not in text and "|" not in text:
        name, _, version = text.partition("=")
        text = f"{name.strip()} (= {version.strip()})"
    try:
        clauses = parse_relations(text)
    except RelationSyntaxError as exc:
        raise ValueError(str(exc)) from None
    if len(clauses) != 1:
        raise ValueError(f"{item!r} must be one package relation (use one list entry each)")
    return clauses[0]


assert set(ARCHS) == set(ArchName.__args__)  # type: ignore[attr-defined]
assert set(DISTROS) == set(DistroName.__args__)  # type: ignore[attr-defined]
