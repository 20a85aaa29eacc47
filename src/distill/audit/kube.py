"""Kubernetes manifest checks: every workload (Pod, Deployment, StatefulSet,
DaemonSet, ReplicaSet, Job, CronJob, and Lists of them) in a multi-document YAML
file, such as ``helm template`` or ``kubectl get -o yaml`` output."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from distill.audit.dockerfile import is_distroless, read_bounded, split_image_ref
from distill.audit.model import Finding, Report
from distill.errors import AuditError, DistillError
from distill.yamlsafe import BoundedLoader, load_yaml_all

MAX_FILE = 16 << 20
MAX_DOCS = 10_000
_TOOLS = re.compile(
    r"(^|[\s/;&|'\"(])(sh|bash|ash|dash|zsh|busybox|curl|wget|nc|cat|grep|ps|pgrep|test)(\s|$|['\";)])"
)
_SHELL = re.compile(r"(^|/)(sh|bash|ash|dash|zsh|busybox)$")


class _Map(dict[str, Any]):
    line = 0


class _Loader(BoundedLoader):
    """The bounded safe loader (distill.yamlsafe), remembering each mapping's line."""


def _construct(loader: _Loader, node: yaml.MappingNode) -> _Map:
    m = _Map(loader.construct_mapping(node, deep=True))  # type: ignore[arg-type]
    m.line = node.start_mark.line + 1
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct)  # type: ignore[type-var]


def _dict(value: Any) -> dict[str, Any]:
    """A mapping field, or an empty one when the manifest has something else there
    (a manifest is input: any field may hold any YAML value)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dig(doc: Any, *keys: str) -> dict[str, Any] | None:
    """``doc[k1][k2]…`` when that is a mapping, else None."""
    for key in keys:
        doc = _dict(doc).get(key)
    return doc if isinstance(doc, dict) else None


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload object (a Pod's own spec), else None."""
    kind = doc.get("kind")
    if kind == "Pod":
        return _dig(doc, "spec")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"):
        return _dig(doc, "spec", "template", "spec")
    if kind == "CronJob":
        return _dig(doc, "spec", "jobTemplate", "spec", "template", "spec")
    return None


def _line(obj: Any, fallback: int) -> int:
    return getattr(obj, "line", 0) or fallback


def load_documents(text: str, label: str, error: type[DistillError] = AuditError) -> list[Any]:
    """The documents of a (multi-document) YAML text, each mapping knowing its ``line``."""
    return load_yaml_all(text, label=label, error=error, loader=_Loader, max_docs=MAX_DOCS)


def line_of(obj: Any) -> int:
    """The line a mapping of :func:`load_documents` starts on (0: not known, as in JSON)."""
    return _line(obj, 0)


def workload_findings(doc: dict[str, Any], where: str) -> list[Finding]:
    """The manifest findings of one workload object (its pod template's containers)."""
    out: list[Finding] = []
    pod = pod_spec(doc)
    if pod is not None:
        _check_pod(doc, pod, where, out)
    return out


def audit_manifest(path: Path, name: str | None = None) -> Report:
    where = name or str(path)
    text = read_bounded(path, MAX_FILE)
    docs = load_documents(text, str(path))
    report = Report(where, "kubernetes")
    workloads = 0
    for doc in docs:
        items = (
            _list(doc.get("items"))
            if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List")
            else [doc]
        )
        for item in items:
            if not isinstance(item, dict):
                continue
            pod = pod_spec(item)
            if not isinstance(pod, dict):
                continue
            workloads += 1
            _check_pod(item, pod, where, report.findings)
    report.facts = {"documents": len(docs), "workloads": workloads}
    return report


def _check_pod(doc: dict[str, Any], pod: dict[str, Any], where: str, out: list[Finding]) -> None:
    meta = _dict(doc.get("metadata"))
    owner = f"{doc.get('kind')}/{meta.get('name', '?')}"
    pod_sc = _dict(pod.get("securityContext"))
    for group in ("initContainers", "containers"):
        for c in _list(pod.get(group)):
            if not isinstance(c, dict):
                continue
            cname = f"{owner} container {c.get('name', '?')}"
            line = _line(c, _line(doc, 1))

            def add(
                fid: str, sev: str, title: str, why: str, fix: str, at: int = line, cname: str = cname
            ) -> None:
                out.append(Finding(fid, sev, f"{cname}: {title}", f"{where}:{at}", why, fix, line=at))

            image = str(c.get("image") or "")
            distroless = is_distroless(image)
            _, tag_or_none, digest = split_image_ref(image)
            tag = tag_or_none or ""
            if not digest:
                if tag in ("", "latest"):
                    add(
                        "K8S-IMAGE-LATEST",
                        "medium",
                        f"image {image or '(none)'} floats on latest",
                        "Nodes may run different images under one name; rollbacks do not roll back.",
                        "Pin the image by digest: image: repo:tag@sha256:…",
                    )
                else:
                    add(
                        "K8S-IMAGE-UNPINNED",
                        "low",
                        f"image {image} is not pinned by digest",
                        "A tag can be moved to a different image; what runs is not what was reviewed.",
                        "Pin by digest: image: repo:tag@sha256:…",
                    )
            if "debug" in tag:
                add(
                    "K8S-DEBUG-IMAGE",
                    "high",
                    f"debug image {image} in a workload",
                    "Debug variants carry a busybox shell: an attacker's toolbox in production.",
                    "Deploy the non-debug tag; troubleshoot with `kubectl debug` ephemeral containers.",
                )
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                p = c.get(probe)
                if isinstance(p, dict) and isinstance(p.get("exec"), dict):
                    cmd = [str(x) for x in _list(p["exec"].get("command"))]
                    text = " ".join(cmd)
                    if cmd and (_SHELL.search(cmd[0]) or _TOOLS.search(text)):
                        sev = "high" if distroless else "medium"
                        add(
                            "K8S-EXEC-PROBE",
                            sev,
                            f"{probe} execs `{text[:60]}`",
                            (
                                "A distroless image has no shell and no curl: this probe always fails and the pod "
                                "is restarted or never ready."
                                if distroless
                                else "The probe needs a shell or curl in the image, which keeps the image from going "
                                "distroless and gives an attacker those tools."
                            ),
                            "Use httpGet (path/port), tcpSocket or grpc probes: the kubelet runs them, the image "
                            "needs nothing.",
                            _line(p, line),
                        )
            for field, label in (("command", "command"), ("args", "args")):
                argv = [str(x) for x in _list(c.get(field))]
                if argv and (
                    _SHELL.search(argv[0])
                    or (field == "args" and not c.get("command") and argv[:1] == ["-c"])
                ):
                    if distroless:
                        add(
                            "K8S-SHELL-COMMAND",
                            "high",
                            f"{label} runs a shell (`{' '.join(argv)[:60]}`)",
                            "The container's image is distroless: there is no shell to run, the container fails.",
                            'Run the program directly in exec form (command: ["/app/server"]).',
                        )
                    elif argv and _SHELL.search(argv[0]):
                        add(
                            "K8S-SHELL-COMMAND",
                            "low",
                            f"{label} runs a shell (`{' '.join(argv)[:60]}`)",
                            "A shell as PID 1 does not forward signals, and ties the image to having a shell.",
                            "Run the program directly in exec form.",
                        )
                joined = " ".join(argv)
                if re.search(r"\bkubectl\b.*\bexec\b", joined):
                    add(
                        "K8S-KUBECTL-EXEC",
                        "medium",
                        "depends on `kubectl exec` into another container",
                        "`kubectl exec` needs a shell or tools inside the target container; it stops working "
                        "once that image is distroless.",
                        "Expose what is needed over an HTTP endpoint, or use `kubectl debug` with an ephemeral container.",
                    )
            for hook in ("postStart", "preStop"):
                h = _dict(c.get("lifecycle")).get(hook)
                if isinstance(h, dict) and isinstance(h.get("exec"), dict):
                    cmd = [str(x) for x in _list(h["exec"].get("command"))]
                    if cmd and (_SHELL.search(cmd[0]) or _TOOLS.search(" ".join(cmd))) and distroless:
                        add(
                            "K8S-EXEC-HOOK",
                            "high",
                            f"{hook} hook execs `{' '.join(cmd)[:60]}`",
                            "A distroless image has no shell or tools for this hook.",
                            "Use an httpGet hook or a `sleep` action (Kubernetes 1.30+), or handle SIGTERM in the app.",
                            _line(h, line),
                        )
            if c.get("stdin") and c.get("tty"):
                add(
                    "K8S-INTERACTIVE",
                    "low",
                    "stdin and tty are enabled",
                    "An interactive container is a sign of exec-based operation, which distroless does not support.",
                    "Drop stdin/tty; use `kubectl debug` for interactive troubleshooting.",
                )
            sc = _dict(c.get("securityContext"))
            if sc.get("privileged"):
                add(
                    "K8S-PRIVILEGED",
                    "critical",
                    "runs privileged",
                    "A privileged container has every capability and the host's devices: escaping it is trivial.",
                    "Remove privileged: true; grant the single capability needed, if any.",
                )
            if sc.get("allowPrivilegeEscalation") is not False:
                add(
                    "K8S-PRIV-ESCALATION",
                    "medium",
                    "allowPrivilegeEscalation is not false",
                    "Without it, setuid binaries and file capabilities can raise the process's privileges.",
                    "Set securityContext.allowPrivilegeEscalation: false.",
                )
            if sc.get("readOnlyRootFilesystem") is not True:
                add(
                    "K8S-RW-ROOTFS",
                    "low",
                    "readOnlyRootFilesystem is not true",
                    "A writable root lets an attacker drop and run files; distroless apps rarely need it.",
                    "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the app writes.",
                )
            run_as_user = sc.get("runAsUser", pod_sc.get("runAsUser"))
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            if run_as_user == 0:
                add(
                    "K8S-RUN-AS-ROOT",
                    "high",
                    "runAsUser is 0",
                    "The container runs as root.",
                    "Run as a non-root uid (65532 on distroless :nonroot images).",
                )
            elif non_root and run_as_user is None:
                add(
                    "K8S-RUNASNONROOT-NAME",
                    "low",
                    "runAsNonRoot without runAsUser",
                    "The kubelet must read the uid from the image's USER; an image whose USER is a name (e.g. "
                    "`nonroot`) fails with CreateContainerConfigError.",
                    "Set runAsUser (and runAsGroup) to the numeric uid, e.g. 65532, or give the image a numeric USER.",
                )
