"""The shape of the OCI (and docker) JSON documents distill reads from images it did
not build: index.json, image indexes, manifests, image configs, docker-save manifests.

An image is input: every field distill uses is type-checked here, once, before any
code indexes into it, so ``{"manifests": 5}`` or a digest that is a number is one
error line naming the document and the field (``manifests[0].digest: …``), not a
``TypeError`` further down. Fields distill does not use are let through unchecked.
The documents are returned as they were (plain dicts); the models only check them.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from distill.errors import DistillError

Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Doc(BaseModel):
    # strict: a size of "12" or 12.0 is as wrong as a size of [] (JSON has the types)
    model_config = ConfigDict(extra="allow", strict=True)


class Platform(_Doc):
    architecture: str = ""
    os: str = ""
    variant: str | None = None


class Descriptor(_Doc):
    mediaType: str = ""
    digest: Digest
    size: int | None = Field(default=None, ge=0)
    annotations: dict[str, str] | None = None
    platform: Platform | None = None


class Index(_Doc):
    """index.json or an image index (manifest list)."""

    mediaType: str | None = None
    manifests: list[Descriptor] = []


class Manifest(_Doc):
    mediaType: str | None = None
    config: Descriptor
    layers: list[Descriptor]


class Top(_Doc):
    """The first document of a reference: an index or a manifest (told apart later)."""

    mediaType: str | None = None
    manifests: list[Descriptor] | None = None
    config: Descriptor | None = None
    layers: list[Descriptor] | None = None


class RuntimeConfig(_Doc):
    User: str | None = None
    WorkingDir: str | None = None
    Env: list[str] | None = None
    Entrypoint: list[str] | None = None
    Cmd: list[str] | None = None
    Labels: dict[str, str] | None = None
    ExposedPorts: dict[str, Any] | None = None
    StopSignal: str | None = None


class RootFS(_Doc):
    diff_ids: list[Digest] = []


class ImageConfig(_Doc):
    architecture: str | None = None
    os: str | None = None
    config: RuntimeConfig | None = None
    rootfs: RootFS = RootFS()
    history: list[dict[str, Any]] | None = None


class DockerEntry(_Doc):
    """One image in a docker-save archive's manifest.json."""

    Config: str
    RepoTags: list[str] | None = None
    Layers: list[str] = []


M = TypeVar("M", bound=BaseModel)
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
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = str(err["msg"])
        if err["type"] == "model_type":
            msg = f"should be a JSON object, not {json_type(err['input'])}"
        where = f"{label}: {_where(tuple(err['loc']))}" if err["loc"] else label
        raise error(f"{where}: {msg}") from None


def check_list(
    model: type[M], value: Any, *, label: str, error: type[DistillError] = DistillError
) -> list[M]:
    """A JSON array whose every item is checked against ``model``."""
    if not isinstance(value, list):
        raise error(f"{label}: should be a JSON array, not {json_type(value)}")
    return [check(model, item, label=f"{label}[{i}]", error=error) for i, item in enumerate(value)]
