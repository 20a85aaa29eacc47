"""Runtime options: *how* to run (never read from a spec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distill.progress import Reporter


@dataclass
class Options:
    cache_dir: Path | None = None
    offline: bool = False
    mirror: str | None = None
    security_mirror: str | None = None
    nodejs_mirror: str | None = None  # Node.js release archives (default $DISTILL_NODEJS_MIRROR)
    jobs: int = 4
    # Clamp every mtime to this and stamp generated files with it (SOURCE_DATE_EPOCH).
    source_date_epoch: int | None = None
    reporter: Reporter = field(default_factory=Reporter)
