"""Debugging distroless containers without a shell in them.

- Beside a running container (``podman:NAME`` / ``docker:NAME``): an ephemeral container
  from distill's own busybox image (the ``static`` flavor's debug variant, built from the
  Debian archive's busybox-static: no registry needed) joins the target's PID, network and
  IPC namespaces — what ``kubectl debug --target`` does in a pod —, so ``ps`` shows the
  target's processes, ``/proc/1/root`` is its filesystem and ``127.0.0.1`` its ports.
  It runs as root with ``CAP_SYS_PTRACE`` (reading another user's ``/proc/PID/root``
  needs it; kubectl's ``general`` profile adds the same), and is removed when it exits.
- In a cluster: the ``kubectl debug`` command line that does the same for a pod.
- A spec: its ``debug`` variant from the same lock (the same packages and app layers,
  plus busybox at ``/busybox``), loaded and run locally, for staging.

The library builds command lines and runs them; :mod:`distill.cli.debug` is the thin
client. Nothing here runs code from an image on the host.
"""

ENGINES = ("podman", "docker")
DEBUG_REPO = "localhost/distill/debug"  # where the busybox image goes in the engine's storage
LABEL = "io.distill.debug"  # on every debug container: the target's id, or the spec
PROFILES = ("general", "baseline", "restricted", "netadmin", "sysadmin", "legacy")  # kubectl debug's

__all__ = ["DEBUG_REPO", "ENGINES", "LABEL", "PROFILES"]
