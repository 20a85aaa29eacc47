"""The built-in family: the flavors of images/ that ``distill publish`` builds by default.

In publish order: each flavor's layers are in the registry before the flavors built on
it are pushed, which mount them. A spec added to images/ is published by default once
it is named here (and documented in docs/publish.md).
"""

from __future__ import annotations

FAMILY: tuple[str, ...] = ("static", "base-nossl", "base", "cc", "python3", "java", "nodejs")
