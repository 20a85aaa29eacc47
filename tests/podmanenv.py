"""podman with distill's own settings, for the tests and the benchmarks: scripts/containers.conf,
vfs storage in a directory of the caller's, and a run root short enough for podman.

podman 4.3.1 refuses a run root longer than 50 characters where it is given as a flag:
in the exit command conmon runs (`podman container cleanup --rm`). A longer one fails
that clean-up silently, and every `podman run` then waits 20 s for it. The run root
therefore lives in /tmp (``/tmp/distill-run-XXXXXXXX``), whatever the caller's directory."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_RUNROOT = 50


class PodmanStorage:
    """``env``: the variables that point podman at it; ``close()`` removes the image store
    (vfs keeps a full copy of every image) and the run root."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.runroot = Path(tempfile.mkdtemp(prefix="distill-run-", dir="/tmp"))
        if len(str(self.runroot)) > MAX_RUNROOT:
            raise AssertionError(f"podman run root {self.runroot} is longer than {MAX_RUNROOT} characters")
        conf = root / "storage.conf"
        conf.write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{self.runroot}"\ngraphroot = "{root}/graph"\n'
        )
        self.env = {
            "CONTAINERS_CONF": str(REPO / "scripts" / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf),
        }

    def close(self) -> None:
        shutil.rmtree(self.root / "graph", ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
