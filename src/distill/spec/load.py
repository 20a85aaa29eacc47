"""Loading specs from YAML: positions for errors, composition with ``extends``."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from distill.builtins import builtin_dir, builtin_names
from distill.distros import ARCHS
from distill.errors import SpecError
from distill.limits import read_text
from distill.redact import field_path, key_label, plain
from distill.spec.model import BaseImageRef, Spec
from distill.yamlsafe import compose_yaml


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
        if c.exists() and not c.is_dir():
            # A FIFO would block the read forever, a device never end: refuse, do not open.
            raise SpecError(f"spec {c}: not a regular file (FIFO, socket or device)")
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
                raise SpecError(f"{file}:{m.line + 1}:{m.column + 1}: duplicate key {key_label(key)}")
            seen.add(key)
            out[("key", *path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _positions(value_node, (*path, key), out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _positions(item, (*path, i), out, file)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], Pos]]:
    # Bounded: a size cap before parsing, depth and alias expansion counted while composing
    # (see distill.yamlsafe), so a YAML bomb is one error line, not minutes and gigabytes.
    text = read_text(path, error=SpecError, what="spec")
    data, node = compose_yaml(text, label=str(path), error=SpecError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}:1:1: a spec must be a mapping of fields, not {type(data).__name__}")
    positions: dict[tuple[Any, ...], Pos] = {}
    if node is not None:
        _positions(node, (), positions, str(path))
    return data, positions


def _validation_message(exc: ValidationError, path: Path, positions: dict[tuple[Any, ...], Pos]) -> str:
    """The first error as ``path:line:col: field: message``, quoting no content (see distill.redact)."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    pos: Pos | None = None
    if err["type"] == "extra_forbidden":
        pos = positions.get(("key", *loc))
    elif loc and loc[-1] == "[key]":  # a mapping key itself is wrong (env: {"A=B": ...})
        loc = loc[:-1]
        pos = positions.get(("key", *loc))
        loc = loc[:-1]
    for n in range(len(loc), -1, -1):
        if pos is not None:
            break
        pos = positions.get(loc[:n])
    where = f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)
    if err["type"] == "extra_forbidden":
        # The file may not be a spec at all (extends: /etc/shadow makes every line a key).
        name = loc[-1] if loc else ""
        if not plain(name):
            return f"{where}: unknown field (not a spec field; its name is not shown)"
        known = list(Spec.model_fields)
        close = difflib.get_close_matches(str(name), known, n=1)
        extra = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown field {field_path(loc)!r}{extra}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {field_path(loc)}: {msg}"


_DICT_FIELDS = ("env", "labels", "annotations")
_ADD_LISTS = ("packages", "exclude", "paths", "certificates", "exposed_ports")


def _merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child over parent: lists add up, mappings merge, anything else is replaced."""
    merged = dict(parent)
    for key, value in child.items():
        old = parent.get(key)
        if key in _ADD_LISTS and isinstance(value, list):
            if key in ("paths",):
                merged[key] = [*(old or []), *value]
            else:
                merged[key] = list(dict.fromkeys([*(old or []), *value]))
        elif key in _DICT_FIELDS and isinstance(value, dict):
            merged[key] = {**(old or {}), **value}
        elif key in ("prune", "trim", "accounts", "nodejs") and isinstance(value, dict):
            sub = dict(old or {})
            for k, v in value.items():
                sub[k] = [*sub.get(k, []), *v] if isinstance(v, list) else v
            merged[key] = sub
        else:
            merged[key] = value
    return merged


def _inside(base: Path, ref: str, path: Path, where: str) -> str:
    """``ref`` resolved against the spec's directory; refuse anything outside it."""
    target = (base / ref).resolve()
    if target != base and base not in target.parents:
        raise SpecError(
            f"{path}:{where}: {ref!r} points outside the spec's directory {base}",
            hint="keep files the image needs next to the spec (or below it)",
        )
    return str(target)


def _localise(data: dict[str, Any], path: Path, positions: dict[tuple[Any, ...], Pos]) -> None:
    """Make the spec's local file references absolute, each checked to stay beside the spec."""
    base = path.parent.resolve()

    def where(*loc: Any) -> str:
        line, col = positions.get(loc, (1, 1))
        return f"{line}:{col}"

    if data.get("keyring"):
        data["keyring"] = [str((path.parent / k).resolve()) for k in data["keyring"]]
    node = data.get("nodejs")
    if isinstance(node, dict) and isinstance(node.get("keyring"), list):
        node["keyring"] = [str((path.parent / k).resolve()) for k in node["keyring"] if isinstance(k, str)]
    if data.get("certificates"):
        data["certificates"] = [
            _inside(base, c, path, where("certificates", i)) for i, c in enumerate(data["certificates"])
        ]
    for i, entry in enumerate(data.get("paths") or []):
        if isinstance(entry, dict) and entry.get("source"):
            entry["source"] = _inside(base, entry["source"], path, where("paths", i, "source"))
    app = data.get("app")
    if isinstance(app, dict):
        app["source"] = _inside(base, app.get("source", "."), path, where("app", "source"))
        if not Path(app["source"]).exists():
            raise SpecError(
                f"{path}:{where('app', 'source')}: app.source {app['source']} does not exist",
                hint="app.source is relative to the spec's directory",
            )
        if app.get("requirements"):
            app["requirements"] = _inside(base, app["requirements"], path, where("app", "requirements"))
            if not Path(app["requirements"]).is_file():
                raise SpecError(
                    f"{path}:{where('app', 'requirements')}: {app['requirements']} does not exist"
                )
        for i, pattern in enumerate(app.get("libs") or []):
            app["libs"][i] = _inside(base, pattern, path, where("app", "libs", i))


Level = tuple[str, dict[str, Any]]


_ENGINES = ("podman:", "docker:")
_ARCHIVES = ("oci-archive:", "docker-archive:")


def _image_base(ref: str, base: Path, where: str) -> BaseImageRef | None:
    """``from:`` as an image (registry, podman/docker, layout, archive), or None when it
    names a distill spec or flavor instead. Paths are relative to the spec's directory."""
    if ref.startswith("docker://"):
        from distill.errors import ImageError
        from distill.oci.ref import parse_reference

        try:
            parsed = parse_reference(ref)
        except ImageError as exc:
            raise SpecError(f"{where}: from: {exc.message}", hint=exc.hint) from None
        return BaseImageRef(ref, f"docker://{parsed}")
    for prefix in _ENGINES:
        if ref.startswith(prefix):
            if not ref[len(prefix) :].strip():
                raise SpecError(f"{where}: from: name an image, e.g. {prefix}localhost/app:1")
            return BaseImageRef(ref, ref)
    for prefix in _ARCHIVES:
        if ref.startswith(prefix):
            file, file_ref = _path_and_ref(ref[len(prefix) :], base)
            if not file.is_file():
                raise SpecError(f"{where}: from: {file} is not a file")
            return BaseImageRef(ref, f"{prefix}{file}" + (f":{file_ref}" if file_ref else ""))
    explicit = ref.startswith("oci:")
    text = ref.removeprefix("oci:")
    name: str | None = None
    directory, sep, tail = text.rpartition(":")
    if explicit and sep and "/" not in tail and tail:
        text, name = directory, tail
    path = (base / text).resolve()
    if (path / "oci-layout").is_file():
        return BaseImageRef(ref, f"oci:{path}" + (f":{name}" if name else ""))
    if explicit:
        raise SpecError(f"from: {path} is not an OCI image layout (no oci-layout file)")
    return None


def _path_and_ref(text: str, base: Path) -> tuple[Path, str | None]:
    """``FILE[:REF]`` relative to ``base`` (a ref is split off only when FILE exists)."""
    whole = (base / text).resolve()
    if whole.exists():
        return whole, None
    head, sep, tail = text.rpartition(":")
    if sep and head and (base / head).exists():
        return (base / head).resolve(), tail or None
    return whole, None


MAX_EXTENDS_DEPTH = 32  # specs in one extends chain (the built-in family is 5 deep)


def _load_levels(path: Path, stack: tuple[Path, ...], seen: set[Path]) -> list[Level]:
    """The composition chain of ``path``, root first: (name, the file's own fields)."""
    real = path.resolve()
    if real in stack:
        chain = " -> ".join(p.name for p in (*stack, real))
        raise SpecError(f"specs extend each other in a cycle: {chain}")
    if len(stack) >= MAX_EXTENDS_DEPTH:
        # Each level is a recursion with a YAML parse in it: a chain of a thousand files
        # ended in Python's recursion limit, reported as a YAML file "nested too deep".
        raise SpecError(f"{stack[0]}: an extends chain of more than {MAX_EXTENDS_DEPTH} specs")
    data, positions = _read_yaml(path)
    try:
        Spec.model_validate(data)  # check this file on its own, with its positions
    except ValidationError as exc:
        raise SpecError(_validation_message(exc, path, positions)) from None
    _localise(data, path, positions)
    parents = data.pop("extends", None)
    base_image = data.pop("from", None)
    if base_image is not None:
        line, col = positions.get(("key", "from"), (1, 1))
        if parents is not None:
            raise SpecError(f"{path}:{line}:{col}: give either 'from' or 'extends', not both")
        image = _image_base(str(base_image), path.parent, f"{path}:{line}:{col}")
        if image is not None:
            if stack:
                raise SpecError(f"{path}:{line}:{col}: only the spec being built can be 'from' an image")
            if data.get("packages") or not isinstance(data.get("app"), dict):
                raise SpecError(
                    f"{path}:{line}:{col}: 'from' an image takes an app and no Debian packages",
                    hint="extend a distill spec or flavor to add packages",
                )
            data["__image__"] = image
        else:
            parents = base_image
    elif parents is None and isinstance(data.get("app"), dict):
        from distill.app import default_flavor

        parents = default_flavor(data["app"]["kind"], data["app"]["source"])
    app = data.get("app")
    if isinstance(app, dict) and app.get("kind") == "binary" and "archs" not in data:
        # A binary runs on one architecture: build for that one unless the spec says otherwise.
        from distill.app.elf import inspect_elf

        source = Path(app["source"])
        if source.is_file():
            arch = inspect_elf(source, "app.source").arch
            if arch in ARCHS:
                data["archs"] = [arch]
    levels: list[Level] = []
    for ref in [] if parents is None else [parents] if isinstance(parents, str) else parents:
        parent_path = resolve_spec_path(ref, path.parent)
        if parent_path.resolve() not in seen:
            levels += _load_levels(parent_path, (*stack, real), seen)
    seen.add(real)
    name = data.get("name") or path.stem.removesuffix(".yaml")
    return [*levels, (name, data)]


def _build(levels: list[Level], update: dict[str, Any], where: Path) -> Spec:
    built: list[tuple[str, Spec]] = []
    merged: dict[str, Any] = {}
    for i, (name, own) in enumerate(levels):
        merged = _merge(merged, own)
        if "name" not in own:
            merged.pop("name", None)
        try:
            spec = Spec.model_validate({**merged, **update})
        except ValidationError as exc:
            raise SpecError(_validation_message(exc, where, {})) from None
        built.append((name if i < len(levels) - 1 else spec.name or name, spec))
    final = built[-1][1]
    final._levels = built
    return final


def load_spec(ref: str | Path) -> tuple[Spec, Path]:
    """Load a spec by path or built-in name, with everything it extends merged in."""
    path = resolve_spec_path(str(ref))
    levels = _load_levels(path, (), set())
    image = levels[-1][1].pop("__image__", None)
    spec = _build(levels, {}, path)
    spec._base_image = image
    return spec, path


def with_overrides(spec: Spec, **update: Any) -> Spec:
    """The spec with fields replaced at every level of its chain (e.g. --distro, --arch)."""
    if not update:
        return spec
    levels = [(name, s.model_dump(exclude_unset=True)) for name, s in spec.levels]
    # Each level already holds everything below it; rebuild from those directly.
    built = []
    for name, data in levels:
        try:
            built.append((name, Spec.model_validate({**data, **update})))
        except ValidationError as exc:
            raise SpecError(_validation_message(exc, Path(name), {})) from None
    final = built[-1][1]
    final._levels = built
    final._base_image = spec.base_image
    return final


def spec_checksum(spec: Spec) -> str:
    """A digest of everything that decides the resolution (not where to download from)."""
    # Architectures are not part of it: a lock may hold more of them than one
    # command asks for (see check_current).
    doc: dict[str, Any] = {
        "distro": spec.distro,
        "packages": spec.packages,
        "exclude": sorted(spec.exclude),
        "prune": spec.prune.model_dump(),
        "sources": [{"suites": s.suites, "components": s.components} for s in spec.sources or []],
        # How the packages split into layers: what each level of the chain asks for.
        "levels": [[name, lv.packages, sorted(lv.exclude)] for name, lv in spec.levels[:-1]],
    }
    if spec.nodejs is not None:  # which release, and who may sign it
        doc["nodejs"] = [spec.nodejs.version, sorted(spec.nodejs.signers)]
    if spec.base_image is not None:  # an app on an image: the lock pins that image
        doc["from"] = spec.base_image.text
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "distill image spec"
    return schema
