"""distill fleet on a fleet written here: manifests (several namespaces, Deployments,
StatefulSets, DaemonSets, CronJobs, init and sidecar containers, the same image in many
workloads, hostile names) and a saved `kubectl get … -o json` inventory, pointing at
images in a real registry (Debian's docker-registry on 127.0.0.1) — distill-built
flavors and a conventional mmdebstrap-built Debian — and at podman's storage. Asserted:
the exact per-workload results, each digest read once (the registry's access log), a
re-run that only resolves tags, the --baseline diff, bad input, and the HTML page in
Debian's headless chromium (no console errors, no network requests, every workload row
in the rendered table; a screenshot kept)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conventional import debian_image
from distill.fleet.inventory import read_inventory
from registries import Registry, sh

REPO = Path(__file__).resolve().parent.parent


def distill(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "distill", *args],
        env=env, capture_output=True, text=True, timeout=900, input=stdin,
    )  # fmt: skip
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    return proc


# -- the inventory (no images needed) ---------------------------------------------------

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      initContainers:
      - {name: migrate, image: "REG/distill/python3:1"}
      - {name: mesh, image: "REG/distill/static:1", restartPolicy: Always}
      containers:
      - name: web
        image: REG/distill/python3:1
        livenessProbe: {exec: {command: [sh, -c, "curl -fs localhost:8000/health"]}}
      - {name: logs, image: "REG/distill/static:1"}
"""


def _pod(name: str, ns: str, owner: tuple[str, str] | None, image: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": extra.pop("labels", {})}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "main", "image": image}], **extra},
    }


def _template(kind: str, name: str, ns: str, image: str) -> dict[str, Any]:
    pod = {"spec": {"containers": [{"name": "main", "image": image}]}}
    spec: dict[str, Any] = (
        {"jobTemplate": {"spec": {"template": pod}}} if kind == "CronJob" else {"template": pod}
    )
    api = "batch/v1" if kind in ("CronJob", "Job") else "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}, "spec": spec}


def _owned(obj: dict[str, Any], owner: tuple[str, str]) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return obj


def live_inventory(reg: str, debian: str, running: str) -> dict[str, Any]:
    """What `kubectl get pods,deployments,statefulsets,daemonsets,cronjobs -A -o json` prints
    for a small cluster: owners and the Pods they made (and, as `kubectl get all` adds them,
    a ReplicaSet and a Job owned by workloads). The StatefulSet's Pod runs the image
    digest ``running`` of legacy/debian (its status says so), whatever the tag names now."""
    h = "5d4f8c7b9"
    db = _pod("db-0", "data", ("StatefulSet", "db"), f"{reg}/legacy/debian:12")
    db["status"] = {"containerStatuses": [
        {"name": "main", "image": f"{reg}/legacy/debian:12", "imageID": f"docker-pullable://{reg}/legacy/debian@{running}"}
    ]}  # fmt: skip
    items = [
        _template("Deployment", "web", "shop", f"{reg}/distill/python3:1"),  # also in the manifests
        _pod(f"web-{h}-abcde", "shop", ("ReplicaSet", f"web-{h}"), f"{reg}/distill/python3:1",
             labels={"pod-template-hash": h}),
        _pod(f"web-{h}-fghij", "shop", ("ReplicaSet", f"web-{h}"), f"{reg}/distill/python3:1",
             labels={"pod-template-hash": h}),
        _owned(_template("ReplicaSet", f"web-{h}", "shop", f"{reg}/distill/python3:1"), ("Deployment", "web")),
        _template("CronJob", "nightly", "batch", f"{reg}/legacy/debian:12"),
        _owned(_template("Job", "nightly-29016000", "batch", f"{reg}/legacy/debian:12"), ("CronJob", "nightly")),
        _pod("nightly-29016000-x1y2z", "batch", ("Job", "nightly-29016000"), f"{reg}/legacy/debian:12"),
        _pod("once-abc12", "batch", ("Job", "once"), f"{reg}/distill/static:1"),
        # a Deployment the inventory does not list, its Pod debugged with an ephemeral container
        _pod(f"api-{h}-k1l2m", "shop", ("ReplicaSet", f"api-{h}"), debian, labels={"pod-template-hash": h},
             ephemeralContainers=[{"name": "debugger", "image": f"{reg}/distill/python3:debug"}]),
        db,
        _pod("standalone", "data", None, f"{reg}/distill/static:1"),
    ]  # fmt: skip
    return {"apiVersion": "v1", "kind": "List", "items": items}


def test_inventory_rolls_pods_up_to_their_owners(tmp_path: Path) -> None:
    reg = "127.0.0.1:5999"
    running = "sha256:" + "1" * 64
    (tmp_path / "live.json").write_text(json.dumps(live_inventory(reg, f"{reg}/legacy/debian:12", running)))
    (tmp_path / "web.yaml").write_text(DEPLOY.replace("REG", reg))
    inv = read_inventory([str(tmp_path / "web.yaml"), str(tmp_path / "live.json")])
    assert inv.errors == []
    got = {
        w.key: (w.pods, [(c.name, c.role, c.image.removeprefix(reg + "/")) for c in w.containers])
        for w in inv.workloads
    }
    assert got == {
        # the manifest's Deployment comes first; kubectl's copy of it and its two Pods are counted in it
        "shop/Deployment/web": (2, [("migrate", "init", "distill/python3:1"), ("mesh", "sidecar", "distill/static:1"),
                                    ("web", "app", "distill/python3:1"), ("logs", "sidecar", "distill/static:1")]),
        "shop/Deployment/api": (1, [("main", "app", "legacy/debian:12"),
                                    ("debugger", "ephemeral", "distill/python3:debug")]),
        "batch/CronJob/nightly": (1, [("main", "app", "legacy/debian:12")]),
        "batch/Job/once": (1, [("main", "app", "distill/static:1")]),
        "data/StatefulSet/db": (1, [("main", "app", "legacy/debian:12")]),
        "data/Pod/standalone": (0, [("main", "app", "distill/static:1")]),
    }  # fmt: skip
    db = next(w for w in inv.workloads if w.key == "data/StatefulSet/db")
    assert db.containers[0].ref == f"{reg}/legacy/debian:12@{running}"  # what the Pod runs is audited
    web = next(w for w in inv.workloads if w.key == "shop/Deployment/web")
    assert {f.id for f in web.findings} >= {"K8S-EXEC-PROBE", "K8S-IMAGE-UNPINNED"}
    assert web.source == f"{tmp_path / 'web.yaml'}:1"  # where its document starts


def test_inventory_bad_input_is_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("name: app\nfrom: python3\n")  # a distill spec, not Kubernetes
    (tmp_path / "broken.json").write_text('{"apiVersion": "v1", "kind": "List", "items": [')
    (tmp_path / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n")
    (tmp_path / "list.txt").write_text("# images\n127.0.0.1:5999/a:1\n\n127.0.0.1:5999/b:1 extra words\n")
    inv = read_inventory(
        [str(tmp_path / n) for n in ("spec.yaml", "broken.json", "svc.yaml", "list.txt")] + ["nope/"]
    )
    assert inv.errors == [
        f"{tmp_path}/spec.yaml: document 1 is not a Kubernetes object (no apiVersion and kind)",
        f"{tmp_path}/broken.json: not valid JSON (line 1, column 48: Expecting value)",
        f"{tmp_path}/list.txt:4: not an image reference (one a line)",
        "nope/: no such file or directory",
    ]
    assert [w.key for w in inv.workloads] == ["-/Image/127.0.0.1:5999/a:1"] and inv.ignored == 1
    # nothing at all to report: one line, exit 2
    proc = distill("fleet", str(tmp_path / "spec.yaml"), "-q", code=2)
    assert proc.stderr.splitlines()[-1].startswith("distill: error: no workload to report")
    assert "Traceback" not in proc.stderr


def test_no_image_readable_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text(f"oci:{tmp_path}/missing-layout:1\nnginx:1.27\n")
    proc = distill("fleet", str(tmp_path / "list.txt"), "--cache-dir", str(tmp_path / "cache"), "-q", code=2)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("distill: error:")]
    assert len(errors) == 2 and "Traceback" not in proc.stderr
    assert "nginx:1.27' names no registry host" in errors[0] + errors[1]
    assert proc.stdout.startswith("distill fleet: 0/2 workloads on distroless")  # still the summary line


def test_references_without_a_registry_host() -> None:
    from distill.errors import ImageError
    from distill.fleet.images import locate

    mirror = "127.0.0.1:5999"
    assert locate("nginx:1.27", mirror)[0] == f"docker://{mirror}/library/nginx:1.27"
    assert locate("team/app", mirror)[0] == f"docker://{mirror}/team/app:latest"
    assert (
        locate("registry.example:5000/team/app:1", mirror)[0] == "docker://registry.example:5000/team/app:1"
    )
    assert locate("podman:localhost/app:1", mirror) == ("podman:localhost/app:1", None)
    with pytest.raises(ImageError, match="names no registry host"):
        locate("nginx:1.27", None)


def test_completion_and_cache_verify(tmp_path: Path) -> None:
    from distill.cachecmd import verify
    from test_cli import _bash_complete

    (tmp_path / "k8s").mkdir()
    for name in ("cluster.json", "images.txt", "web.yaml", "notes.md"):
        (tmp_path / name).write_text("")
    offered = set(_bash_complete("distill fleet ", tmp_path))
    assert {"k8s/", "cluster.json", "images.txt", "web.yaml"} <= offered and "notes.md" not in offered
    assert _bash_complete("distill fleet x --basel", tmp_path) == ["--baseline"]
    # the cache's fleet entries are verified with the rest: a damaged one is removed
    fleet = tmp_path / "cache" / "fleet"
    fleet.mkdir(parents=True)
    (fleet / f"{'a' * 64}.json").write_bytes(b"not sealed")
    (fleet / "stray").write_bytes(b"")
    report = verify(tmp_path / "cache")
    assert sorted(p.name for p, _ in report.removed) == ["a" * 64 + ".json", "stray"] and not any(
        fleet.iterdir()
    )


def test_bad_baseline_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "list.txt").write_text("127.0.0.1:5999/a@sha256:" + "0" * 64 + "\n")
    (tmp_path / "old.json").write_text(json.dumps({"schema": "distill-audit", "reports": []}))
    proc = distill("fleet", str(tmp_path / "list.txt"), "--baseline", str(tmp_path / "old.json"), code=2)
    assert proc.stderr.strip() == (
        f'distill: error: --baseline {tmp_path}/old.json: not a distill fleet JSON report (no "schema": "distill-fleet")'
    )


# -- the fleet on real images ---------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A registry with distill's static, python3 (nonroot) and python3 debug, and a
    conventional Debian 12 (mmdebstrap minbase); the static image also in podman's storage."""
    d = tmp_path_factory.mktemp("fleet-images")
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    reg = Registry(d / "registry")
    try:
        built = {
            "distill/static:1": ("static", []),
            "distill/python3:1": ("python3", ["--variant", "nonroot"]),
            "distill/python3:debug": ("python3", ["--variant", "debug"]),
        }
        for ref, (spec, extra) in built.items():
            out = d / (ref.replace("/", "_").replace(":", "_") + ".oci")
            distill("build", spec, "--arch", "amd64", *extra, "-o", str(out), *cache, "-q", env=env)
            distill("push", str(out), f"{reg.host}/{ref}", "-q", env=env)
        # an application the audit can size up: coreutils' sleep, an ELF linking libc (the base flavor)
        _, layout = debian_image(d, "debian", cmd=("/usr/bin/sleep", "infinity"))
        distill("push", f"{layout}:1", f"{reg.host}/legacy/debian:12", "-q", env=env)
        shutil.rmtree(layout)
        (d / "debian.tar").unlink()
        sh("skopeo", "copy", "-q", f"oci:{d}/distill_static_1.oci", "containers-storage:localhost/fleet/static:1",
           env=env)  # fmt: skip
        # what legacy/debian:12 named before it moved: the python3 image
        distill("push", f"{d}/distill_python3_1.oci", f"{reg.host}/legacy/debian:old", "-q", env=env)
        digests = {ref: _head(reg.host, ref) for ref in [*built, "legacy/debian:12", "legacy/debian:old"]}
        yield {"registry": reg, "host": reg.host, "dir": d, "digests": digests}
    finally:
        reg.close()


def _head(host: str, ref: str) -> str:
    import httpx

    repo, _, tag = ref.partition(":")
    r = httpx.head(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={
            "Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
        },
    )
    return str(r.headers["docker-content-digest"])


def write_corpus(root: Path, reg: str, digests: dict[str, str]) -> list[str]:
    """The fleet's inputs: manifests (helm-template style, several documents per file) in a
    directory, a saved kubectl inventory and an image list; the inputs' paths."""
    m = root / "manifests"
    m.mkdir(parents=True)
    (m / "web.yaml").write_text(DEPLOY.replace("REG", reg))
    static_pinned = f"{reg}/distill/static@{digests['distill/static:1']}"
    (m / "shop.yaml").write_text(f"""\
# Source: shop/templates/cart.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {{name: cart, namespace: shop}}
spec:
  template:
    spec:
      containers:
      - {{name: cart, image: "{reg}/legacy/debian:12"}}
---
# Source: shop/templates/report.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {{name: report, namespace: shop}}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - {{name: report, image: "{reg}/distill/python3:debug"}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{ports: [{{port: 80}}]}}
""")  # fmt: skip
    (m / "data.yaml").write_text(f"""\
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {{name: agent, namespace: data}}
  spec:
    template:
      spec:
        containers:
        - {{name: agent, image: "{static_pinned}"}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {{name: ghost, namespace: data}}
  spec:
    template:
      spec:
        containers:
        - {{name: gone, image: "{reg}/nope/missing:1"}}
        - {{name: hub, image: "postgres:16"}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {{name: "<img src=x onerror=alert(1)>", namespace: "</td><script>alert(2)</script>"}}
  spec:
    template:
      spec:
        containers:
        - {{name: x, image: "{reg}/distill/static:1"}}
""")  # fmt: skip
    # db-0 started before legacy/debian:12 moved: it still runs what is now legacy/debian:old
    running = digests["legacy/debian:old"]
    (root / "live.json").write_text(json.dumps(live_inventory(reg, f"{reg}/legacy/debian:12", running)))
    (root / "images.txt").write_text(
        f"# one a line\n{reg}/distill/python3:1\npodman:localhost/fleet/static:1\n"
    )
    return [str(m), str(root / "live.json"), str(root / "images.txt")]


# (grade, distroless, flavor that fits, shells, package managers, root, debug images, unpinned, exec probes, status)
Expect = tuple[str | None, bool | None, str | None, list[str], list[str], bool, int, int, int, str]
DEB_SHELLS = ["bash", "dash", "rbash", "sh"]
DEB_PKG = ["apt", "apt-cache", "apt-get", "dpkg", "dpkg-deb"]
BUSYBOX = ["ash", "busybox", "sh"]


def expected(podman: bool = True) -> dict[str, Expect]:
    # distill's static is the root variant (grade B: IMG-ROOT), python3:1 the nonroot one (A);
    # busybox (the debug variant's shell) has an rpm applet, which the audit counts
    static: Expect = ("B", True, None, [], [], True, 0, 1, 0, "ok")
    unread: Expect = (None, None, None, [], [], False, 0, 1, 0, "error")
    return {
        "shop/Deployment/web": ("B", True, None, [], [], True, 0, 2, 1, "ok"),
        "shop/Deployment/cart": ("F", False, "base", DEB_SHELLS, DEB_PKG, True, 0, 1, 0, "ok"),
        "shop/CronJob/report": ("F", False, None, BUSYBOX, ["dpkg", "dpkg-deb", "rpm"], True, 1, 1, 0, "ok"),
        "shop/Deployment/api": ("F", False, "base", sorted({*DEB_SHELLS, *BUSYBOX}), [*DEB_PKG, "rpm"], True, 1, 2, 0, "ok"),
        "data/DaemonSet/agent": ("B", True, None, [], [], True, 0, 0, 0, "ok"),
        "data/Deployment/ghost": (None, None, None, [], [], False, 0, 2, 0, "error"),
        "data/StatefulSet/db": ("A", True, None, [], [], False, 0, 1, 0, "ok"),  # the digest its Pod runs
        "data/Pod/standalone": static,
        "batch/CronJob/nightly": ("F", False, "base", DEB_SHELLS, DEB_PKG, True, 0, 1, 0, "ok"),
        "batch/Job/once": static,
        "</td><script>alert(2)</script>/Deployment/<img src=x onerror=alert(1)>": static,
        "-/Image/REG/distill/python3:1": ("A", True, None, [], [], False, 0, 1, 0, "ok"),
        "-/Image/podman:localhost/fleet/static:1": static if podman else unread,
    }  # fmt: skip


def summary(doc: dict[str, Any], reg: str) -> dict[str, Expect]:
    return {
        w["key"].replace(reg, "REG"): (
            w["grade"], w["distroless"], w["flavor"], w["shells"], w["package_managers"], w["root"],
            len(w["debug"]), len(w["unpinned"]), len(w["exec_probes"]), w["status"],
        )
        for w in doc["workloads"]
    }  # fmt: skip


def _blob_paths(host: str, ref: str) -> list[str]:
    """The config and layer paths of a registry image (read here, after the counted run)."""
    import httpx

    repo, _, tag = ref.partition(":")
    manifest = httpx.get(
        f"http://{host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    return [f"/v2/{repo}/blobs/{d['digest']}" for d in [manifest["config"], *manifest["layers"]]]


def blob_gets(reg: Registry, since: int) -> list[str]:
    return [p for m, p in reg.requests()[since:] if m == "GET" and "/blobs/sha256:" in p]


@pytest.mark.podman
@pytest.mark.network
def test_fleet_report_dedup_cache_baseline_and_browser(
    images: dict[str, Any], env: dict[str, str], tmp_path: Path
) -> None:
    reg, host = images["registry"], images["host"]
    inputs = write_corpus(tmp_path / "fleet", host, images["digests"])
    cache = ["--cache-dir", str(tmp_path / "cache")]  # a cache of its own: the first run reads every image
    since = len(reg.requests())
    out = tmp_path / "report1.json"
    proc = distill("fleet", *inputs, *cache, "-o", str(out), env=env)
    doc = json.loads(out.read_text())
    assert summary(doc, host) == expected()
    # what could not be read is one line each, the rest is reported
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("distill: error:")]
    assert errors == [
        f"distill: error: data/Deployment/ghost: gone: {host}/nope/missing:1: not found in the registry (manifests 1)",
        "distill: error: data/Deployment/ghost: hub: 'postgres:16' names no registry host (the container runtime's "
        "default) (hint: name the registry with --default-registry HOST[:PORT] (distill assumes none))",
    ]
    assert doc["schema"] == "distill-fleet" and doc["version"] == 1
    s = doc["summary"]
    assert (s["workloads"], s["distroless"], s["images"], s["images_failed"]) == (13, 8, 5, 2)
    shop = next(n for n in doc["namespaces"] if n["namespace"] == "shop")
    assert (shop["workloads"], shop["distroless"]) == (4, 1)
    deb = doc["images"][images["digests"]["legacy/debian:12"]]
    assert (
        shop["removable"]["packages"]
        == deb["packages"] + doc["images"][images["digests"]["distill/python3:debug"]]["packages"]
    )
    assert doc["offenders"][0] in ("shop/Deployment/api", "shop/Deployment/cart")  # fmt: skip
    # every digest read once: the blobs fetched are exactly those of the four registry images,
    # once per image (python3 and its debug variant share their lower layers), though python3:1
    # runs in five workloads and static:1 in six
    gets = Counter(p.rsplit("/", 1)[1] for p in blob_gets(reg, since))
    audited = [ref for ref in images["digests"] if ref != "legacy/debian:old"]  # python3:1's digest
    assert gets == Counter(p.rsplit("/", 1)[1] for ref in audited for p in _blob_paths(host, ref)), gets
    assert "read 5 images from their sources" in proc.stderr

    # nothing changed: only the tags are resolved (HEAD), no manifest, config or layer read
    since = len(reg.requests())
    again = distill("fleet", *inputs, *cache, "--format", "json", "-q", env=env)
    assert summary(json.loads(again.stdout), host) == expected()
    methods = {(m, p.split("/manifests/")[0] if "/manifests/" in p else p) for m, p in reg.requests()[since:]}
    assert {m for m, _ in methods} == {"HEAD"}, methods
    assert "read " not in again.stderr

    # a damaged cache entry is input: noticed, removed, the image read again
    entry = sorted((tmp_path / "cache" / "fleet").glob("*.json"))[0]
    entry.write_bytes(entry.read_bytes()[:-10] + b"x" * 10)
    healed = distill("fleet", *inputs, *cache, "--format", "json", env=env)
    assert summary(json.loads(healed.stdout), host) == expected()
    assert (
        "is damaged; it was removed" in healed.stderr and "read 1 images from their sources" in healed.stderr
    )

    # no podman: that one image is reported unread, the rest as before
    # (and the kubectl inventory read from stdin)
    nopod = {**env, "PATH": "/nonexistent"}
    piped = [inputs[0], "-", inputs[2]]
    live = Path(inputs[1]).read_text()
    proc = distill("fleet", *piped, *cache, "--format", "json", "-q", env=nopod, stdin=live)
    assert summary(json.loads(proc.stdout), host) == expected(podman=False)
    assert (
        "distill: error: -/Image/podman:localhost/fleet/static:1: image: podman:localhost/fleet/static:1: podman is not installed"
        in proc.stderr
    )

    # the next night: cart migrated to python3, the agent regressed to Debian, report gone, a new one
    m = tmp_path / "fleet" / "manifests"
    shop = (m / "shop.yaml").read_text()
    shop = shop.replace(f"{host}/legacy/debian:12", f"{host}/distill/python3:1")
    shop = shop.replace("name: report,", "name: invoice,")
    (m / "shop.yaml").write_text(shop)
    data = (
        (m / "data.yaml")
        .read_text()
        .replace(f"{host}/distill/static@{images['digests']['distill/static:1']}", f"{host}/legacy/debian:12")
    )
    (m / "data.yaml").write_text(data)
    out2 = tmp_path / "report2.json"
    proc = distill("fleet", *inputs, *cache, "--baseline", str(out), "-o", str(out2), env=env)
    doc2 = json.loads(out2.read_text())
    b = doc2["baseline"]
    assert (b["migrated"], b["regressed"], b["new"], b["gone"]) == (
        ["shop/Deployment/cart"],
        ["data/DaemonSet/agent"],
        ["shop/CronJob/invoice"],
        ["shop/CronJob/report"],
    )
    before = {w["key"]: w for w in doc["workloads"]}
    now = {w["key"]: w for w in doc2["workloads"]}
    delta = lambda k: before[k]["packages"] - now[k]["packages"]  # noqa: E731
    # removed so far is net: what the migration took away, less what the regression brought back
    assert delta("shop/Deployment/cart") > 0 > delta("data/DaemonSet/agent")
    assert doc2["removed"]["packages"] == delta("shop/Deployment/cart") + delta("data/DaemonSet/agent")
    assert doc2["removed"]["since"] == doc["generated"]
    assert "1 migrated, 1 regressed" in proc.stdout
    # --fail-on: the Debian images' shells are high findings
    distill("fleet", *inputs, *cache, "-q", "--fail-on", "high", env=env, code=1)

    # vulnerabilities: counted from data at hand (a tracker export for bookworm: the Debian
    # image's bash has a fix waiting, its dpkg an open issue); distill's trixie images are not
    # covered by it, so they get no count rather than a false 0; a URL is not fetched
    bookworm = {"repositories": {"bookworm": "x"}}
    tracker = {
        "bash": {"CVE-2026-9001": {"description": "bash: test", "scope": "local", "releases": {
            "bookworm": {"status": "resolved", "urgency": "high", "fixed_version": "99:0", **bookworm}}}},
        "dpkg": {"CVE-2026-9002": {"description": "dpkg: test", "scope": "local", "releases": {
            "bookworm": {"status": "open", "urgency": "low", **bookworm}}}},
    }  # fmt: skip
    (tmp_path / "tracker.json").write_text(json.dumps(tracker))
    proc = distill(
        "fleet", *inputs, *cache, "--db", str(tmp_path / "tracker.json"), "--format", "json", "-q", env=env
    )
    vulns = {w["key"]: w["vulnerabilities"] for w in json.loads(proc.stdout)["workloads"]}
    deb = {"critical": 0, "high": 1, "medium": 0, "low": 1, "total": 2, "fixable": 1}
    assert vulns["batch/CronJob/nightly"] == deb and vulns["data/DaemonSet/agent"] == deb
    assert vulns["shop/Deployment/cart"] is None and vulns["shop/Deployment/web"] is None  # python3 now
    assert vulns["shop/Deployment/api"] == deb  # its debug container's trixie image is not counted
    text = distill("fleet", *inputs, *cache, "--db", str(tmp_path / "tracker.json"), env=env).stdout
    assert "vulnerabilities: 2 in 1 of 5 images (1 with a fix waiting" in text
    url = "http://127.0.0.1:9/tracker.json"
    proc = distill("fleet", *inputs, *cache, "--db", url, "--format", "json", "-q", env=env)
    v = json.loads(proc.stdout)["vulnerabilities"]
    assert not v["available"] and "not at hand offline" in v["note"] and url in v["note"]

    # the HTML page and the Markdown, from the same cached audits
    html = tmp_path / "report.html"
    distill("fleet", *inputs, *cache, "--baseline", str(out), "-o", str(html), "-q", env=env)
    md = distill("fleet", *inputs, *cache, "--format", "markdown", "-q", env=env).stdout
    assert "<script>" not in md and "&lt;img src=x onerror=alert\\(1\\)&gt;" in md
    page = html.read_text()
    assert "<script>alert" not in page and "<img" not in page
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in page
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    browse(html, len(doc2["workloads"]), tmp_path)


def _chromium(tmp: Path, url: str, *extra: str) -> tuple[str, str, list[dict[str, Any]]]:
    """Run headless chromium on ``url``: (the DOM after the scripts ran, its log, the
    requests the page itself started, from the net log)."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is missing: run scripts/setup.sh")
    netlog = tmp / "net.json"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", *extra, url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    # The browser's own traffic (updates, time) has no initiator; what the page loads has its origin.
    by_source: dict[int, dict[str, Any]] = {}
    for ev in log["events"]:
        if types[ev["type"]] in ("REQUEST_ALIVE", "URL_REQUEST_START_JOB") and "params" in ev:
            by_source.setdefault(ev["source"]["id"], {}).update(ev["params"])
    page = [r for r in by_source.values() if "initiator" in r and r["initiator"] != "not an origin"]
    return proc.stdout, proc.stderr, page


def _console(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Content Security Policy" in ln]


def browse(html: Path, workloads: int, tmp: Path) -> None:
    # The checks can fail: a page that logs an error and loads an image over the network is caught.
    control = tmp / "control.html"
    control.write_text(
        '<!DOCTYPE html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script>'
    )
    _, err, requests = _chromium(tmp / "c", control.as_uri(), "--dump-dom")
    assert any("boom" in ln for ln in _console(err)) and any("127.0.0.1:9" in r["url"] for r in requests)

    dom, err, requests = _chromium(tmp / "p", html.as_uri(), "--dump-dom")
    assert _console(err) == [] and requests == []
    assert 'data-ready="1"' in dom  # the script ran (under the page's CSP)
    rows = re.findall(r'<tr data-ns="[^"]*" data-distroless="(yes|no|\?)"', dom)
    assert len(rows) == workloads
    assert f"{workloads} of {workloads} workloads shown" in dom
    assert "<script>alert" not in dom and "onerror" not in dom.replace("onerror=alert(1)&gt;", "")
    assert "<b>migrated</b> (1): <code>shop/Deployment/cart</code>" in dom  # the --baseline section
    # sorted and filtered by the script, the view taken from the link: not yet distroless, fewest
    # packages first (the page itself lists the worst, the largest, first)
    dom, err, requests = _chromium(tmp / "v", html.as_uri() + "#todo=1&sort=packages", "--dump-dom")
    assert _console(err) == [] and requests == []
    rows = re.findall(r'<tr data-ns="[^"]*" data-distroless="(yes|no|\?)"( hidden="")?>(.*?)</tr>', dom, re.S)
    shown = [
        (d, int(re.findall(r'<td class="num">(\d+)</td>', body)[0])) for d, hidden, body in rows if not hidden
    ]
    assert {d for d, _ in shown} == {"no", "?"} and len(rows) - len(shown) == sum(
        1 for d, _, _ in rows if d == "yes"
    )
    assert [p for _, p in shown] == sorted(p for _, p in shown) and shown[0][1] < shown[-1][1]
    assert f"{len(shown)} of {workloads} workloads shown" in dom
    artifacts = (
        Path(os.environ.get("DISTILL_TEST_ARTIFACTS") or tempfile.gettempdir()) / "distill-test-artifacts"
    )
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "fleet-report.png"
    _, err, requests = _chromium(tmp / "s", html.as_uri(), f"--screenshot={shot}", "--window-size=1400,1800")
    assert _console(err) == [] and requests == [] and shot.stat().st_size > 10_000
    print(f"fleet report screenshot: {shot}")
