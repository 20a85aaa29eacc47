"""A fleet's inventory: workloads, their containers and the images they run.

Inputs, any mix: Kubernetes manifests (a file, a directory of them, multi-document and
``helm template`` output, ``List`` kinds), the JSON of ``kubectl get pods,deployments,
statefulsets,daemonsets,cronjobs -A -o json`` (a file, or ``-`` for stdin), and plain
text lists of image references (one a line, ``#`` comments). Every input is read with
the project's limits (distill.limits, distill.yamlsafe) and every problem is one line
naming the input and the document, never quoting it.

A live inventory lists Pods beside their owners: a Pod owned by a ReplicaSet rolls up
to the Deployment that made it (the ReplicaSet's name is the Deployment's plus the
pod's ``pod-template-hash``), a Job's Pod to its CronJob (the Job's name is the
CronJob's plus the scheduled minute), a StatefulSet's or DaemonSet's Pod to it; the
same workload is counted once however many Pods (or inputs) show it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.audit.kube import line_of, load_documents, pod_spec, workload_findings
from distill.audit.model import Finding
from distill.errors import DistillError, FleetError
from distill.fswalk import walk
from distill.limits import MAX_JSON, load_json, read_regular

MAX_INPUT = MAX_JSON  # one manifest file, kubectl's JSON or a list (a big cluster's is tens of MiB)
MAX_LIST_LINES = 100_000
MAX_REF = 512  # an image reference (the distribution spec's 255-character name, a tag and a digest)
WORKLOAD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)
_EXTENSIONS = (".yaml", ".yml", ".json")
_K8S_LINE = re.compile(r"^\s*(apiVersion|kind)\s*:", re.M)
_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Container:
    name: str
    role: str  # app | init | sidecar (an init container with restartPolicy: Always) | ephemeral
    image: str
    running: str | None = None  # the digest a live Pod's status says it runs (imageID)

    @property
    def ref(self) -> str:
        """What to resolve: the image, pinned to the digest it runs when a live Pod says."""
        from distill.oci.source import IMAGE_PREFIXES

        local = self.image.startswith(IMAGE_PREFIXES) and not self.image.startswith("docker://")
        if self.running is None or "@" in self.image or local or not self.image:
            return self.image
        return f"{self.image}@{self.running}"


@dataclass
class Workload:
    namespace: str
    kind: str
    name: str
    source: str  # FILE:LINE, FILE (JSON) or "-" (stdin)
    containers: list[Container] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # the manifest's (distill.audit.kube)
    pods: int = 0  # Pods of a live inventory rolled up into it

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"


@dataclass
class Inventory:
    workloads: list[Workload] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one line each: an input or a document not read
    ignored: int = 0  # Kubernetes objects that run nothing (Services, ConfigMaps, ...)
    inputs: list[str] = field(default_factory=list)


def _text(value: Any, limit: int = 253) -> str:
    """A name from a manifest: a string, control characters replaced, bounded."""
    s = value if isinstance(value, str) else "" if value is None else str(value)
    return _CTRL.sub("?", s)[:limit]


def _containers(pod: dict[str, Any]) -> list[Container]:
    out: list[Container] = []
    for group, role in (
        ("initContainers", "init"),
        ("containers", "app"),
        ("ephemeralContainers", "ephemeral"),
    ):
        items = pod.get(group)
        for c in items if isinstance(items, list) else []:
            if not isinstance(c, dict):
                continue
            r = "sidecar" if role == "init" and c.get("restartPolicy") == "Always" else role
            if role == "app" and out and any(x.role == "app" for x in out):
                r = "sidecar"  # the first container is the application, the others its sidecars
            out.append(Container(_text(c.get("name")) or "?", r, _text(c.get("image"), MAX_REF)))
    return out


_IMAGE_ID = re.compile(r"@(sha256:[0-9a-f]{64})$")


def _running(obj: dict[str, Any], containers: list[Container]) -> None:
    """Each container's digest from a live Pod's status (``imageID``: ``REPO@sha256:…``, or
    ``docker-pullable://REPO@sha256:…``), where it names one and none is known yet."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    found: dict[str, str] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        items = status.get(key)
        for st in items if isinstance(items, list) else []:
            if isinstance(st, dict) and isinstance(st.get("imageID"), str):
                m = _IMAGE_ID.search(st["imageID"])
                if m:
                    found[_text(st.get("name"))] = m.group(1)
    for c in containers:
        if c.running is None and c.name in found:
            c.running = found[c.name]


def _owner(item: dict[str, Any], known: set[tuple[str, str, str]], ns: str) -> tuple[str, str] | None:
    """The workload a live Pod belongs to (kind, name), or None for a Pod of its own."""
    meta = _meta(item)
    owners = meta.get("ownerReferences")
    refs = [r for r in owners if isinstance(r, dict)] if isinstance(owners, list) else []
    if not refs:
        return None
    ref = next((r for r in refs if r.get("controller") is True), refs[0])
    kind, name = _text(ref.get("kind")), _text(ref.get("name"))
    found = meta.get("labels")
    labels: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "ReplicaSet":
        h = _text(labels.get("pod-template-hash"))
        if h and name.endswith("-" + h):
            return "Deployment", name[: -len(h) - 1]
    if kind == "Job":
        m = re.fullmatch(r"(.+)-\d{6,}", name)
        if m and (ns, "CronJob", m.group(1)) in known:
            return "CronJob", m.group(1)
    return (kind, name) if kind and name else None


def _objects(docs: list[Any], label: str, errors: list[str]) -> list[tuple[dict[str, Any], int]]:
    """The Kubernetes objects of parsed documents (Lists opened), each with its document number."""
    out = []
    for n, doc in enumerate(docs, 1):
        if doc is None:
            continue  # an empty document (a "---" at the end)
        if not isinstance(doc, dict) or not isinstance(doc.get("kind"), str) or "apiVersion" not in doc:
            errors.append(f"{label}: document {n} is not a Kubernetes object (no apiVersion and kind)")
            continue
        if doc["kind"].endswith("List"):
            items = doc.get("items")
            if not isinstance(items, list):
                errors.append(f"{label}: document {n} is a {_text(doc['kind'], 60)} without items")
                continue
            for i, item in enumerate(items):
                if isinstance(item, dict) and isinstance(item.get("kind"), str):
                    out.append((item, n))
                else:
                    errors.append(f"{label}: document {n}, item {i + 1} is not a Kubernetes object")
            continue
        out.append((doc, n))
    return out


def _kind_of(text: str, name: str) -> str:
    """json | yaml | list: what an input holds, from its content (and name)."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return "json"
    if _K8S_LINE.search(text[: 1 << 20]) or name.lower().endswith((".yaml", ".yml")):
        return "yaml"
    return "list"


def _read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise FleetError(f"stdin: larger than the limit of {MAX_INPUT} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FleetError(f"stdin: not UTF-8 text (byte {exc.start})") from None


def _read(path: Path) -> str:
    data = read_regular(path, MAX_INPUT, error=FleetError)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FleetError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _image_list(text: str, label: str, errors: list[str]) -> list[Workload]:
    from distill.oci.source import IMAGE_PREFIXES

    out: list[Workload] = []
    lines = text.splitlines()
    if len(lines) > MAX_LIST_LINES:
        raise FleetError(f"{label}: more than {MAX_LIST_LINES} lines")
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith(IMAGE_PREFIXES) else raw.strip()
        if not line:
            continue
        words = line.split()
        ref = words[0]
        if len(words) > 1 or len(ref) > MAX_REF or _CTRL.search(ref):
            errors.append(f"{label}:{n}: not an image reference (one a line)")
            continue
        out.append(Workload("-", "Image", ref, f"{label}:{n}", [Container("image", "app", ref)]))
    if not out and not errors:
        errors.append(f"{label}: neither Kubernetes objects nor image references")
    return out


def _files(target: str, errors: list[str]) -> list[tuple[str, Path | None]]:
    if target == "-":
        return [("-", None)]
    path = Path(target)
    if path.is_dir():
        found: list[tuple[str, Path | None]] = []
        for root, dirs, files in walk(target):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                p = Path(root) / f
                if p.suffix.lower() in _EXTENSIONS and not f.startswith(".") and p.is_file():
                    found.append((str(p), p))
        if not found:
            errors.append(f"{target}: no .yaml, .yml or .json files in the directory")
        return found
    if not path.exists():
        errors.append(f"{target}: no such file or directory")
        return []
    return [(target, path)]


def read_inventory(targets: list[str]) -> Inventory:
    """Every workload of ``targets`` (files, directories, ``-``), deduplicated; what could
    not be read is an error line each (the rest is still read)."""
    inv = Inventory(inputs=list(targets))
    objects: list[tuple[dict[str, Any], str, str]] = []  # (object, where, file)
    listed: list[Workload] = []
    for target in targets:
        for label, path in _files(target, inv.errors):
            try:
                text = _read_stdin() if path is None else _read(path)
                kind = _kind_of(text, label)
                if kind == "list":
                    listed += _image_list(text, label, inv.errors)
                    continue
                docs = (
                    [load_json(text, label=label, error=FleetError)]
                    if kind == "json"
                    else load_documents(text, label, FleetError)
                )
            except DistillError as exc:
                inv.errors.append(exc.one_line())
                continue
            for obj, n in _objects(docs, label, inv.errors):
                line = line_of(obj)
                objects.append((obj, f"{label}:{line}" if line else f"{label} (document {n})", label))
    seen: dict[str, Workload] = {}
    known = {
        (_ns(o), _text(o.get("kind")), _text(_meta(o).get("name")))
        for o, _, _ in objects
        if o.get("kind") in WORKLOAD_KINDS
    }
    owned: list[tuple[dict[str, Any], str, str, tuple[str, str]]] = []
    up: dict[tuple[str, str, str], tuple[str, str]] = {}  # (namespace, kind, name) -> its owner
    for obj, where, label in objects:
        pod = pod_spec(obj) if obj.get("kind") in WORKLOAD_KINDS else None
        if pod is None:
            inv.ignored += 1
            continue
        ns, kind, name = _ns(obj), _text(obj.get("kind")), _text(_meta(obj).get("name")) or "?"
        owner = _owner(obj, known, ns)
        # a Pod rolls up to whatever owns it; a ReplicaSet or Job only to a workload (a Deployment,
        # a CronJob), as `kubectl get all` lists them beside their owners
        if owner is not None and (kind == "Pod" or owner[0] in WORKLOAD_KINDS):
            owned.append((obj, where, label, owner))
            up[(ns, kind, name)] = owner
            continue
        w = Workload(ns, kind, name, where)
        w.containers = _containers(pod)
        _running(obj, w.containers)
        w.findings = workload_findings(obj, label)
        seen.setdefault(w.key, w)
    # counted in their owner: ReplicaSets and Jobs first (their templates), then the Pods
    for obj, where, label, owner in sorted(owned, key=lambda t: t[0].get("kind") == "Pod"):
        ns = _ns(obj)
        for _ in range(4):  # Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob
            owner = up.get((ns, *owner), owner)
        kind, name = owner
        key = f"{ns}/{kind}/{name}"
        found = _containers(pod_spec(obj) or {})
        if key not in seen:
            w = Workload(ns, kind, name, where)
            w.containers = [c for c in found if c.role != "ephemeral"]
            w.findings = workload_findings(obj, label)
            seen[key] = w
        w = seen[key]
        if obj.get("kind") != "Pod":
            continue
        w.pods += 1
        names = {c.name for c in w.containers}
        w.containers += [c for c in found if c.role == "ephemeral" and c.name not in names]  # kubectl debug
        _running(
            obj, [c for c in w.containers if any(f.name == c.name and f.image == c.image for f in found)]
        )
    for w in listed:
        seen.setdefault(w.key, w)
    inv.workloads = sorted(seen.values(), key=lambda w: (w.namespace, w.kind, w.name))
    return inv


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _ns(obj: dict[str, Any]) -> str:
    return _text(_meta(obj).get("namespace")) or "default"
