"""Where the built-in specs (static, base, cc, python3, java, nodejs, ...) are, and their
names. Apart from :mod:`distill.spec` so that the command line lists them without
importing the spec model (pydantic) at start-up."""

from __future__ import annotations

from pathlib import Path


def builtin_dir() -> Path:
    """Where the built-in specs live: ``_images`` in the wheel, ``images/`` in a checkout."""
    here = Path(__file__).resolve().parent
    wheel = here / "_images"
    if wheel.is_dir():
        return wheel
    return here.parent.parent / "images"


def is_builtin(path: Path) -> bool:
    """Whether a spec path is one of the built-in specs (their locks go in the working
    directory, not beside them)."""
    return path.resolve().parent == builtin_dir().resolve()


def builtin_names() -> list[str]:
    d = builtin_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


__all__ = ["builtin_dir", "builtin_names", "is_builtin"]
