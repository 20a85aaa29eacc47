"""What an error message may quote of the input it complains about.

Errors name a path and a position, never a file's contents: a spec can ``extends:``
any file the user can read, and a requirements file can ``-r`` one, so the document
distill complains about may be ``/etc/shadow`` rather than a spec. The rule, for
every message built from parsed content (a key, a value, a line):

* a key is echoed only when it is a *plain identifier*: ASCII ``[A-Za-z_][A-Za-z0-9_-]*``
  of at most 41 characters (every spec field is one; a typo of one is one too, so the
  "did you mean" suggestion survives). Anything else is shown as ``<key>``;
* values and lines of a file are never echoed; a tool's message that quotes them
  (PyYAML's, pip's) is cut down to the position it names.
"""

from __future__ import annotations

import re

PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,40}", re.ASCII)
HIDDEN = "<key>"


def plain(text: object) -> bool:
    """True when ``text`` may be quoted in an error (see the module's rule)."""
    return isinstance(text, str) and PLAIN.fullmatch(text) is not None


def key_label(key: object) -> str:
    """A mapping key for a message: quoted when plain, else ``<key>``."""
    return repr(key) if plain(key) else HIDDEN


def field_path(loc: tuple[object, ...]) -> str:
    """A dotted field path (``accounts.users.0.shell``); keys that are not plain are hidden."""
    return ".".join(str(p) if isinstance(p, int) or plain(p) else HIDDEN for p in loc)


_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")


def tool_message(text: str) -> str:
    """A parser's own message with what it quotes of the input hidden.

    Quoted spans of one character or an escape (``','``, ``'\\t'``) stay; anything
    else becomes ``'…'``: an anchor, alias or tag name is the file's content too."""

    def keep(m: re.Match[str]) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        return m.group(0) if len(inner) <= 2 else "'…'"

    return _QUOTED.sub(keep, text)


# pip names the file and line of a requirement it cannot parse:
# "ERROR: Invalid requirement: '<the line>' (from line 3 of reqs.txt)"; newer pips
# print the line again below with a caret. Only the file and the line number are kept.
_PIP_LINE = re.compile(r"\(from line (\d+) of ([^)\n]+)\)")


def pip_failure(stderr: str, requirements: str) -> str:
    """One line for a failed ``pip install -r``: pip's error without the lines it quotes."""
    errors = [ln for ln in stderr.splitlines() if ln.startswith("ERROR")]
    where = _PIP_LINE.search(stderr)
    invalid = any("Invalid requirement" in ln for ln in errors)
    if where is not None:
        what = "not a valid requirement" if invalid else "refused by pip"
        return f"pip could not install {requirements}: {where.group(2)} line {where.group(1)}: {what}"
    if invalid:
        return f"pip could not install {requirements}: a line of it (or of a file it includes) is not a valid requirement"
    last = errors or stderr.splitlines()[-1:]
    return f"pip could not install {requirements}: {' '.join(last)[:400]}"
