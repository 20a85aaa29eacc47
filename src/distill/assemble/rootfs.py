"""From packages to layer plans: one layer per level of the spec's composition chain.

``static`` -> ``base-nossl`` -> ``base`` -> ``cc`` -> ``python3``: each level lays its
own packages into the tree, then regenerates what maintainer scripts would have
(accounts, os-release, CA bundle, ld.so.cache, dpkg status.d), drops the directories
trimming emptied and writes each package's md5sums from what the tree then holds.
What changed during the level is its layer. A level's layer therefore depends only on
that level and the ones below it, so every image built on ``base`` carries
byte-identical ``base`` layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from distill.assemble import ldcache, system
from distill.assemble.expand import FILE, Expanded, Member
from distill.assemble.tree import Node, Tree, Trimmer, file_node
from distill.errors import BuildError
from distill.spec.model import Spec

if TYPE_CHECKING:
    from distill.app import AppBuild


@dataclass(frozen=True)
class LevelInput:
    name: str
    spec: Spec  # the level's spec with everything below merged in
    packages: list[tuple[str, Expanded]]  # (package, expanded .deb) in lock order
    archives: list[tuple[str, Expanded]] = field(default_factory=list)  # release archives (Node.js)


@dataclass
class LayerPlan:
    name: str
    entries: dict[str, Node | None]  # changed entries; None means removed (a whiteout)
    parents: dict[str, Node]  # directories on the way to them, as they stand
    packages: list[str] = field(default_factory=list)
    epoch: int = 0
    comment: str = ""


def _max_mtime(packages: list[tuple[str, Expanded]]) -> int:
    return max((m[5] for _, exp in packages for m in exp.members), default=0)


def _plan(tree: Tree, name: str, packages: list[str], epoch: int, comment: str) -> LayerPlan:
    changes = tree.take_changes()
    parents: dict[str, Node] = {}
    for path in changes:
        parent = path.rpartition("/")[0]
        while parent and parent not in parents and parent not in changes:
            node = tree.get(parent)
            if node is not None:
                parents[parent] = node
            parent = parent.rpartition("/")[0]
    return LayerPlan(name, changes, parents, packages, epoch, comment)


def assemble(
    levels: list[LevelInput],
    arch: str,
    distro: str,
    *,
    debug: Expanded | None = None,
    clamp: int | None = None,
    app: AppBuild | None = None,
) -> tuple[list[LayerPlan], Tree]:
    """Lay the levels, the app's layers and the debug busybox (if given) into a tree;
    one plan per layer (a level that changes nothing makes none)."""
    tree = Tree()
    plans: list[LayerPlan] = []
    epoch = 0
    # Trimming is image-wide (the final spec's rules apply to every level); a rule that
    # matches nothing below leaves the lower layers as they are, so they stay shared.
    trimmer = Trimmer(levels[-1].spec.trim)
    for level in levels:
        spec = level.spec
        epoch = clamp if clamp is not None else max(epoch, _max_mtime(level.packages + level.archives))
        for pkg, exp in level.packages:
            tree.add_package(pkg, exp, trimmer, clamp)
            system.status_d(tree, pkg, exp.control_text, exp.md5sums, epoch)
        for name, exp in level.archives:  # not a Debian package: no status.d record
            tree.add_package(name, exp, trimmer, clamp)
        system.accounts(tree, spec.accounts, epoch)
        system.os_release(tree, spec.distro, epoch)
        system.spec_paths(tree, spec.paths, epoch, arch)
        system.ca_bundle(tree, spec.certificates, epoch, trimmer.ca_sources)
        system.java_truststore(tree, epoch)
        # What the level's packages and generators leave is final: drop the directories
        # trimming emptied, then list each package's files as they now are.
        tree.prune_trimmed_dirs()
        system.md5sums(tree, epoch)
        entries = ldcache.cache_entries(tree, arch)
        if entries:
            system.write_entry(
                tree, "etc/ld.so.cache", file_node(ldcache.write_cache(entries), 0o644, epoch), epoch
            )
        names = [pkg for pkg, _ in level.packages]
        comment = f"{len(names)} packages: {' '.join(names)}" if names else "no packages"
        plan = _plan(tree, level.name, names, epoch, comment)
        if plan.entries or not plans:
            plans.append(plan)
    if app is not None:
        plans += app_layers(tree, app, arch, epoch)
    if debug is not None:
        epoch = clamp if clamp is not None else max(epoch, _max_mtime([("busybox-static", debug)]))
        applets = _debug_layer(tree, debug, epoch, clamp)
        comment = f"busybox with {len(applets)} applets at /busybox"
        plans.append(_plan(tree, "debug", ["busybox-static"], epoch, comment))
    return plans, tree


def app_layers(tree: Tree, app: AppBuild, arch: str, epoch: int) -> list[LayerPlan]:
    """The app's layers on top of the tree, after checking the tree has what it needs."""
    app.check(tree, arch)
    plans = []
    for layer in app.layers:
        for path, node in layer.entries:
            system.write_entry(tree, path, replace(node, mtime=epoch), epoch)
        plan = _plan(tree, f"app {layer.name}", [], epoch, layer.comment)
        if plan.entries:
            plans.append(plan)
    return plans


def _debug_layer(tree: Tree, debug: Expanded, epoch: int, clamp: int | None) -> list[str]:
    """busybox-static's binary at /busybox with its applet links, its copyright and status.d."""

    def node(m: Member, mode: int, mtime: int) -> Node:
        return Node(FILE, mode, 0, 0, mtime, m[6], src=(str(debug.tar), m[8]), owner="busybox-static")

    binary = next((m for m in debug.members if m[1] == FILE and m[0].endswith("bin/busybox")), None)
    if binary is None:
        raise BuildError("busybox-static ships no bin/busybox")
    applets = system.busybox(
        tree, node(binary, 0o755, min(binary[5], clamp) if clamp is not None else binary[5]), epoch
    )
    for m in debug.members:  # its license, where scanners look for it
        if m[1] == FILE and m[0].startswith("usr/share/doc/busybox-static/") and m[0].endswith("/copyright"):
            system.write_entry(tree, m[0], node(m, 0o644, epoch), epoch)
    # Its md5sums line, for the path the binary has in this image.
    md5 = b"".join(
        line.split()[0] + b"  busybox/busybox\n"
        for line in debug.md5sums.splitlines()
        if line.rstrip().endswith(b"bin/busybox")
    )
    system.status_d(tree, "busybox-static", debug.control_text, md5, epoch)
    system.md5sums(tree, epoch)
    return applets
