"""Loading specs from YAML: positions for errors, composition with ``extends``."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from distill.errors import SpecError
from distill.spec.model import Spec

_LIST_FIELDS = ("packages", "exclude")


def builtin_dir() -> Path:
    """Where the built-in specs (static, base, cc, python3, ...) live."""
    here = Path(__file__).resolve().parent.parent
    wheel = here / "_images"
    if wheel.is_dir():
        return wheel
    return here.parent.parent / "images"


def builtin_names() -> list[str]:
    d = builtin_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def resolve_spec_path(ref: str, relative_to: Path | None = None) -> Path:
    """A spec reference: an existing path, or the name of a built-in spec."""
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to / ref)
    candidates.append(Path(ref))
    if not ref.endswith((".yaml", ".yml")) and "/" not in ref:
        candidates.append(builtin_dir() / f"{ref}.yaml")
    for c in candidates:
        if c.is_file():
            return c
    hint = "built-in specs: " + ", ".join(builtin_names())
    raise SpecError(f"spec {ref!r} not found", hint=hint)


Pos = tuple[int, int]


def _positions(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], Pos], file: str) -> None:
    """Record where each value starts (``out[path]``) and each key (``out[("key", *path)]``)."""
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                m = key_node.start_mark
                raise SpecError(f"{file}:{m.line + 1}:{m.column + 1}: duplicate key {key!r}")
            seen.add(key)
            out[("key", *path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _positions(value_node, (*path, key), out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, (*path, i), out, file)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], Pos]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise SpecError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}:1:1: a spec must be a mapping of fields, not {type(data).__name__}")
    positions: dict[tuple[Any, ...], Pos] = {}
    if node is not None:
        _positions(node, (), positions, str(path))
    return data, positions


def _validation_message(exc: ValidationError, path: Path, positions: dict[tuple[Any, ...], Pos]) -> str:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    pos = positions.get(("key", *loc)) if err["type"] == "extra_forbidden" else None
    for n in range(len(loc), -1, -1):
        if pos is not None:
            break
        pos = positions.get(loc[:n])
    where = f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)
    field = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        known = list(Spec.model_fields)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        extra = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown field {field!r}{extra}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {field}: {msg}"


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = dict(parent)
    for key, value in child.items():
        if key in _LIST_FIELDS and isinstance(value, list):
            merged[key] = list(dict.fromkeys([*parent.get(key, []), *value]))
        elif key == "prune" and isinstance(value, dict):
            prune = dict(parent.get("prune", {}))
            for k, v in value.items():
                prune[k] = (
                    list(dict.fromkeys([*prune.get(k, []), *v])) if k == "keep" and isinstance(v, list) else v
                )
            merged["prune"] = prune
        else:
            merged[key] = value
    return merged


def _load_raw(path: Path, stack: tuple[Path, ...]) -> dict[str, Any]:
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(p.name for p in (*stack, real))
        raise SpecError(f"specs extend each other in a cycle: {chain}")
    data, positions = _read_yaml(path)
    try:
        Spec.model_validate(data)  # check this file on its own, with its positions
    except ValidationError as exc:
        raise SpecError(_validation_message(exc, path, positions)) from None
    if data.get("keyring"):
        data["keyring"] = [str((path.parent / k).resolve()) for k in data["keyring"]]
    parents = data.pop("extends", None)
    if parents is None:
        return data
    merged: dict[str, Any] = {}
    for ref in [parents] if isinstance(parents, str) else parents:
        parent_path = resolve_spec_path(ref, path.parent)
        merged = _merge(merged, _load_raw(parent_path, (*stack, real)))
    merged.pop("name", None)
    return _merge(merged, data)


def load_spec(ref: str | Path) -> tuple[Spec, Path]:
    """Load a spec by path or built-in name, with everything it extends merged in."""
    path = resolve_spec_path(str(ref))
    raw = _load_raw(path, ())
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_validation_message(exc, path, {})) from None
    return spec, path


def spec_checksum(spec: Spec) -> str:
    """A digest of everything that decides the resolution (not where to download from)."""
    # Architectures are not part of it: a lock may hold more of them than one
    # command asks for (see check_current).
    doc = {
        "distro": spec.distro,
        "packages": spec.packages,
        "exclude": sorted(spec.exclude),
        "prune": spec.prune.model_dump(),
        "sources": [{"suites": s.suites, "components": s.components} for s in spec.sources or []],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "distill image spec"
    return schema
