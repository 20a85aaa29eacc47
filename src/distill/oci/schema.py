"""The shape of the OCI (and docker) JSON documents distill reads from images it did
not build: index.json, image indexes, manifests, image configs, docker-save manifests.

An image is input: every field distill uses is type-checked here, once, before any
code indexes into it, so ``{"manifests": 5}`` or a digest that is a number is one
error line naming the document and the field (``manifests[0].digest: …``), not a
``TypeError`` further down. Fields distill does not use are let through unchecked.
The documents are returned as they were (plain dicts); the models only check them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from distill.errors import DistillError

# The checks are a few lines of plain Python rather than pydantic models: every command
# that reads an image (push, sign, verify, audit) runs them, and importing pydantic and
# building its validators cost ~70 ms of each such command's start-up. Messages are
# pydantic's (they name the field, never the value).

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REQUIRED: Any = object()

Loc = tuple[int | str, ...]
Check = Callable[[Any, Loc], Any]
Fields = dict[str, tuple[Check, Callable[[], Any]]]


class _Invalid(Exception):
    def __init__(self, loc: Loc, msg: str, kind: str = "", value: Any = None) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.kind, self.value = loc, msg, kind, value


def _str(value: Any, loc: Loc) -> str:
    if type(value) is not str:
        raise _Invalid(loc, "Input should be a valid string")
    return value


def _int(value: Any, loc: Loc) -> int:
    if type(value) is not int:  # strict: not a bool, not 12.0, not "12"
        raise _Invalid(loc, "Input should be a valid integer")
    if value < 0:
        raise _Invalid(loc, "Input should be greater than or equal to 0")
    return value


def _digest(value: Any, loc: Loc) -> str:
    if not _DIGEST.fullmatch(_str(value, loc)):  # fullmatch: no newline after the hex either
        raise _Invalid(loc, f"String should match pattern '^{_DIGEST.pattern}$'")
    return str(value)


def _any(value: Any, loc: Loc) -> Any:
    return value


def _optional(check: Check) -> Check:
    return lambda value, loc: None if value is None else check(value, loc)


def _list(item: Check) -> Check:
    def check(value: Any, loc: Loc) -> list[Any]:
        if type(value) is not list:
            raise _Invalid(loc, "Input should be a valid list")
        return [item(v, (*loc, i)) for i, v in enumerate(value)]

    return check


def _dict(item: Check) -> Check:
    def check(value: Any, loc: Loc) -> dict[str, Any]:
        if type(value) is not dict:
            raise _Invalid(loc, "Input should be a valid dictionary")
        return {k: item(v, (*loc, k)) for k, v in value.items()}

    return check


class _Doc:
    """A checked JSON object: its declared fields as attributes (defaults filled in),
    the others kept unchecked in ``model_extra``."""

    _fields: ClassVar[Fields] = {}

    def __init__(self, values: dict[str, Any], extra: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self.model_extra = extra

    @classmethod
    def model_validate(cls: type[M], value: Any, loc: Loc = ()) -> M:
        if type(value) is not dict:
            raise _Invalid(loc, "Input should be a valid dictionary", "model_type", value)
        values: dict[str, Any] = {}
        for name, (check, default) in cls._fields.items():
            if name in value:
                values[name] = check(value[name], (*loc, name))
            elif default is _REQUIRED:
                raise _Invalid((*loc, name), "Field required")
            else:
                values[name] = default()
        return cls(values, {k: v for k, v in value.items() if k not in cls._fields})

    def model_dump(self, exclude_none: bool = False) -> dict[str, Any]:
        """The fields (defaults included) and the extra ones, nested documents as dicts."""

        def plain(v: Any) -> Any:
            if isinstance(v, _Doc):
                return v.model_dump(exclude_none)
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        out = {name: plain(getattr(self, name)) for name in self._fields}
        out.update(self.model_extra)
        return {k: v for k, v in out.items() if not (exclude_none and v is None)}


def _model(cls: type[_Doc]) -> Check:
    return lambda value, loc: cls.model_validate(value, loc)


def _required(check: Check) -> tuple[Check, Callable[[], Any]]:
    return check, _REQUIRED  # the sentinel itself, not a factory


def _default(check: Check, make: Callable[[], Any]) -> tuple[Check, Callable[[], Any]]:
    return check, make


def _none(check: Check) -> tuple[Check, Callable[[], Any]]:
    return _optional(check), lambda: None


_OPT_STR = _none(_str)
_OPT_STRS = _none(_list(_str))


class Platform(_Doc):
    architecture: str
    os: str
    variant: str | None
    _fields: ClassVar[Fields] = {
        "architecture": _default(_str, str),
        "os": _default(_str, str),
        "variant": _OPT_STR,
    }


class Descriptor(_Doc):
    mediaType: str
    digest: str
    size: int | None
    annotations: dict[str, str] | None
    platform: Platform | None
    _fields: ClassVar[Fields] = {
        "mediaType": _default(_str, str),
        "digest": _required(_digest),
        "size": _none(_int),
        "annotations": _none(_dict(_str)),
        "platform": _none(_model(Platform)),
    }


_DESCRIPTORS = _list(_model(Descriptor))


class Index(_Doc):
    """index.json or an image index (manifest list)."""

    mediaType: str | None
    manifests: list[Descriptor]
    _fields: ClassVar[Fields] = {"mediaType": _OPT_STR, "manifests": _default(_DESCRIPTORS, list)}


class Manifest(_Doc):
    mediaType: str | None
    config: Descriptor
    layers: list[Descriptor]
    _fields: ClassVar[Fields] = {
        "mediaType": _OPT_STR,
        "config": _required(_model(Descriptor)),
        "layers": _required(_DESCRIPTORS),
    }


class Top(_Doc):
    """The first document of a reference: an index or a manifest (told apart later)."""

    mediaType: str | None
    manifests: list[Descriptor] | None
    config: Descriptor | None
    layers: list[Descriptor] | None
    _fields: ClassVar[Fields] = {
        "mediaType": _OPT_STR,
        "manifests": _none(_DESCRIPTORS),
        "config": _none(_model(Descriptor)),
        "layers": _none(_DESCRIPTORS),
    }


class RuntimeConfig(_Doc):
    User: str | None
    WorkingDir: str | None
    Env: list[str] | None
    Entrypoint: list[str] | None
    Cmd: list[str] | None
    Labels: dict[str, str] | None
    ExposedPorts: dict[str, Any] | None
    StopSignal: str | None
    _fields: ClassVar[Fields] = {
        "User": _OPT_STR,
        "WorkingDir": _OPT_STR,
        "Env": _OPT_STRS,
        "Entrypoint": _OPT_STRS,
        "Cmd": _OPT_STRS,
        "Labels": _none(_dict(_str)),
        "ExposedPorts": _none(_dict(_any)),
        "StopSignal": _OPT_STR,
    }


class RootFS(_Doc):
    diff_ids: list[str]
    _fields: ClassVar[Fields] = {"diff_ids": _default(_list(_digest), list)}


class ImageConfig(_Doc):
    architecture: str | None
    os: str | None
    config: RuntimeConfig | None
    rootfs: RootFS
    history: list[dict[str, Any]] | None
    _fields: ClassVar[Fields] = {
        "architecture": _OPT_STR,
        "os": _OPT_STR,
        "config": _none(_model(RuntimeConfig)),
        "rootfs": _default(_model(RootFS), lambda: RootFS.model_validate({})),
        "history": _none(_list(_dict(_any))),
    }


class DockerEntry(_Doc):
    """One image in a docker-save archive's manifest.json."""

    Config: str
    RepoTags: list[str] | None
    Layers: list[str]
    _fields: ClassVar[Fields] = {
        "Config": _required(_str),
        "RepoTags": _OPT_STRS,
        "Layers": _default(_list(_str), list),
    }


M = TypeVar("M", bound=_Doc)
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def json_type(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words."""
    return _JSON_TYPES.get(type(value), "a number")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def check(model: type[M], value: Any, *, label: str, error: type[DistillError] = DistillError) -> M:
    """``value`` checked against ``model``; the first problem is one line naming ``label``
    and the field (never the value: it is the image's content)."""
    try:
        return model.model_validate(value)
    except _Invalid as exc:
        msg = f"should be a JSON object, not {json_type(exc.value)}" if exc.kind == "model_type" else exc.msg
        where = f"{label}: {_where(exc.loc)}" if exc.loc else label
        raise error(f"{where}: {msg}") from None


def check_list(
    model: type[M], value: Any, *, label: str, error: type[DistillError] = DistillError
) -> list[M]:
    """A JSON array whose every item is checked against ``model``."""
    if not isinstance(value, list):
        raise error(f"{label}: should be a JSON array, not {json_type(value)}")
    return [check(model, item, label=f"{label}[{i}]", error=error) for i, item in enumerate(value)]
