"""A Debian package's declared license, from its ``debian/copyright``.

Only a machine-readable file (DEP-5: a first paragraph with a ``Format:`` field naming
the copyright-format 1.0) says which licenses apply; anything else is free text and
gives ``NOASSERTION``, never a guess from words in it. Of a DEP-5 file, every
``Files:`` paragraph's ``License:`` line counts (the header's when there are none):
the package is declared under all of them, joined with ``AND``.

DEP-5 short names become SPDX identifiers by the correspondence DEP-5 itself
documents (``GPL-2+`` is ``GPL-2.0-or-later``, ``Expat`` is ``MIT``, ``Perl`` is
``Artistic-1.0-Perl OR GPL-1.0-or-later``, ``Zope-2.1`` is ``ZPL-2.1``), or by being an
SPDX identifier already (checked against the SPDX list that ``license-expression``
ships). A name that is neither (``public-domain``, ``BSD-3-clause-Berkeley``, a GPL
without a version) is the file's own license and becomes ``LicenseRef-NAME``, with the
text of its standalone ``License:`` paragraph when the file has one. ``A or B, and C``
is ``(A OR B) AND C`` (DEP-5's precedence: ``and`` before ``or``, a comma before
both). A line that does not parse makes the whole package ``NOASSERTION``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from distill.debian.deb822 import parse_paragraph

NOASSERTION = "NOASSERTION"
MAX_COPYRIGHT = 4 << 20  # bytes of one copyright file read (the largest in Debian are ~1 MB)
MAX_EXTRACTED = 64 << 10  # characters of one LicenseRef's text kept

# DEP-5's short names whose SPDX identifiers are the name with a version: family ->
# (SPDX stem, whether SPDX spells the versions -only / -or-later).
_GNU = {"gpl": "GPL", "lgpl": "LGPL", "agpl": "AGPL", "gfdl": "GFDL", "gfdl-niv": "GFDL"}
_VERSIONED = {
    "apache": "Apache",
    "artistic": "Artistic",
    "cddl": "CDDL",
    "cpl": "CPL",
    "efl": "EFL",
    "lppl": "LPPL",
    "mpl": "MPL",
    "python": "Python",
    "qpl": "QPL",
    "zope": "ZPL",
    "cc-by": "CC-BY",
    "cc-by-sa": "CC-BY-SA",
    "cc-by-nd": "CC-BY-ND",
    "cc-by-nc": "CC-BY-NC",
    "cc-by-nc-sa": "CC-BY-NC-SA",
    "cc-by-nc-nd": "CC-BY-NC-ND",
    "cc0": "CC0",
}
# Names DEP-5 defines that are not spelled as their SPDX identifier.
_RENAMED = {
    "expat": "MIT",
    "perl": "Artistic-1.0-Perl OR GPL-1.0-or-later",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "w3c": "W3C",
    "zlib": "Zlib",
    "isc": "ISC",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]*")
_VERSION = re.compile(r"(?P<family>[A-Za-z][A-Za-z-]*?)-?(?P<version>\d+(?:\.\d+)*[a-z]?)(?P<plus>\+?)")
_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass
class Declared:
    """A package's declared license: an SPDX expression (or NOASSERTION) and the text
    of every LicenseRef it uses."""

    expression: str = NOASSERTION
    refs: dict[str, str] = field(default_factory=dict)


@functools.cache
def _spdx() -> tuple[dict[str, str], dict[str, str]]:
    """SPDX license and exception identifiers, by lower-case spelling, from the SPDX list
    that ``license-expression`` ships. Only the identifiers themselves: the index's other
    keys are scancode's guesses (``GPL`` for ``GPL-1.0-or-later``, ``bzip2-1.0.5`` for
    ``bzip2-1.0.6``), which a declared license must not be read as. (The index, not the
    library's ``Licensing`` object: that one takes 0.2 s to build its tokenizer.)"""
    from license_expression import get_license_index

    licenses: dict[str, str] = {}
    exceptions: dict[str, str] = {}
    for entry in get_license_index():
        key = entry.get("spdx_license_key")
        if not isinstance(key, str) or not key or key.startswith("LicenseRef-"):
            continue
        (exceptions if entry.get("is_exception") else licenses)[key.lower()] = key
    return licenses, exceptions


_GNU_DEPRECATED = re.compile(r"(?P<stem>A?GPL|LGPL|GFDL)-(?P<version>\d\.\d)(?P<plus>\+?)", re.I)


def _metadata_id(token: str) -> str | None:
    """One identifier of a package's own license field: an SPDX identifier (its deprecated
    GNU spellings, ``GPL-2.0`` and ``GPL-2.0+``, as SPDX defines them) or ``ID+``."""
    found = _spdx()[0].get(token.lower())
    if found:
        return found
    m = _GNU_DEPRECATED.fullmatch(token)
    if m:
        return _spdx()[0].get(
            _gnu(m.group("stem").upper(), m.group("version"), bool(m.group("plus"))).lower()
        )
    if token.endswith("+"):
        base = _spdx()[0].get(token[:-1].lower())
        if base and not base.endswith(("-only", "-or-later")):
            return base + "+"
    return None


MAX_NESTING = 16


def metadata_expression(text: str) -> str | None:
    """A license field of package metadata (PyPI's ``License-Expression``, npm's
    ``license``, apk's ``L:``) as a canonical SPDX expression of listed identifiers, or
    None when it is not one (free text, an unknown name, a LicenseRef) — never a guess.
    SPDX's grammar: identifiers (any case, ``+``), ``WITH`` an exception, ``AND`` before
    ``OR`` (operators in upper case, as SPDX matches them), parentheses."""
    tokens: list[str] = re.findall(r"\(|\)|[^\s()]+", text)
    if not tokens or len(tokens) > 200:
        return None
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""  # SPDX's operators are upper case

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def term(depth: int) -> str | None:
        if peek() == "(":
            if depth >= MAX_NESTING:
                return None
            take()
            inner = either(depth + 1)
            if inner is None or peek() != ")":
                return None
            take()
            return f"({inner})"
        if peek() in ("", ")", "AND", "OR", "WITH"):
            return None
        ident = _metadata_id(take())
        if ident is None:
            return None
        if peek() == "WITH":
            take()
            exception = _spdx()[1].get(take().lower()) if peek() not in ("", "(", ")") else None
            return f"{ident} WITH {exception}" if exception else None
        return ident

    def chain(depth: int, op: str, sub: Any) -> str | None:
        parts = [sub(depth)]
        while parts[-1] is not None and peek() == op:
            take()
            parts.append(sub(depth))
        return None if None in parts else f" {op} ".join(parts)

    def both(depth: int) -> str | None:
        return chain(depth, "AND", term)

    def either(depth: int) -> str | None:
        return chain(depth, "OR", both)

    out = either(0)
    return out if out is not None and pos == len(tokens) else None


def ref_id(name: str) -> str:
    """``LicenseRef-…`` for a license name of the file's own (SPDX's idstring charset)."""
    safe = _REF_UNSAFE.sub("-", name.replace("+", "-plus")).strip("-")
    return f"LicenseRef-{safe or 'unnamed'}"


def _gnu(stem: str, version: str, plus: bool) -> str:
    version = version if "." in version else version + ".0"
    if stem == "GFDL-NIV":
        return f"GFDL-{version}-no-invariants-{'or-later' if plus else 'only'}"
    return f"{stem}-{version}-{'or-later' if plus else 'only'}"


def spdx_name(name: str) -> str | None:
    """The SPDX form of one DEP-5 license name (an expression for ``Perl``), or None
    when SPDX has no identifier for it."""
    low = name.lower()
    if low in _RENAMED:
        return _RENAMED[low]
    m = _VERSION.fullmatch(name)
    if m:
        family, version, plus = m.group("family").lower(), m.group("version"), bool(m.group("plus"))
        if family in _GNU:
            stem = "GFDL-NIV" if family == "gfdl-niv" else _GNU[family]
            found = _spdx()[0].get(_gnu(stem, version, plus).lower())
            if found:
                return found
            return None
        if family in _VERSIONED:
            stem = _VERSIONED[family]
            candidates = [f"{stem}-{version}", f"{stem}-{version}.0"]
            for c in candidates:
                found = _spdx()[0].get(c.lower())
                if found:
                    return found + ("+" if plus else "")
    base, plus = (name[:-1], True) if name.endswith("+") else (name, False)
    found = _spdx()[0].get(base.lower())
    if found and not (plus and found.endswith(("-only", "-or-later"))):
        return found + ("+" if plus else "")
    return None


class _Unparsable(Exception):
    pass


def _term(words: list[str], refs: dict[str, str], texts: dict[str, str]) -> str:
    """``NAME`` or ``NAME with EXCEPTION exception`` as SPDX."""
    if not words or not _NAME.fullmatch(words[0]):
        raise _Unparsable
    name = words[0]
    if len(words) == 1:
        found = spdx_name(name)
        if found is None:
            return _ref(name, refs, texts)
        return f"({found})" if " " in found else found
    if len(words) < 3 or words[1].lower() != "with" or words[-1].lower() != "exception":
        raise _Unparsable
    exception = "-".join(words[2:-1])
    base = spdx_name(name)
    exceptions = _spdx()[1]
    known = exceptions.get(exception.lower()) or exceptions.get(f"{exception}-exception".lower())
    if base is not None and " " not in base and known:
        return f"{base} WITH {known}"
    return _ref(" ".join(words), refs, texts)


def _ref(name: str, refs: dict[str, str], texts: dict[str, str]) -> str:
    ident = ref_id(name)
    text = texts.get(name.lower()) or f"{name} (as named in the package's debian/copyright)"
    refs.setdefault(ident, text[:MAX_EXTRACTED])
    return ident


def _group(words: list[str], refs: dict[str, str], texts: dict[str, str]) -> tuple[str, int]:
    """Terms joined by and/or (and before or, as in SPDX): the SPDX text and term count."""
    out: list[str] = []
    term: list[str] = []
    for word in words:
        if word.lower() in ("and", "or"):
            if not term:
                raise _Unparsable
            out += [_term(term, refs, texts), word.upper()]
            term = []
        else:
            term.append(word)
    if not term:
        raise _Unparsable
    out.append(_term(term, refs, texts))
    return " ".join(out), (len(out) + 1) // 2


def dep5_expression(line: str, refs: dict[str, str], texts: dict[str, str]) -> str:
    """One ``License:`` line of a DEP-5 file as an SPDX expression (raises _Unparsable)."""
    groups = re.split(r",\s*(and|or)\s+", line.strip(), flags=re.I)
    if any("," in g for g in groups[::2]):
        raise _Unparsable  # a comma with no operator after it: not DEP-5's grammar
    text, count = _group(groups[0].split(), refs, texts)
    for i in range(1, len(groups), 2):
        part, n = _group(groups[i + 1].split(), refs, texts)
        left = f"({text})" if count > 1 else text
        text, count = f"{left} {groups[i].upper()} {f'({part})' if n > 1 else part}", count + n
    return text


def is_dep5(first: dict[str, str]) -> bool:
    fmt = first.get("Format", "").strip().rstrip("/")
    return fmt.endswith("copyright-format/1.0") or "dep5" in fmt.lower()


def declared(data: bytes | None) -> Declared:
    """The declared license of a package whose ``debian/copyright`` is ``data``."""
    if data is None or len(data) > MAX_COPYRIGHT:
        return Declared()
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    paragraphs = [parse_paragraph(p) for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs or not is_dep5(paragraphs[0]):
        return Declared()
    # Standalone License paragraphs give the text of a name used elsewhere.
    texts: dict[str, str] = {}
    for p in paragraphs[1:]:
        if "License" in p and "Files" not in p:
            name, _, body = p["License"].partition("\n")
            if body.strip():
                texts.setdefault(name.strip().lower(), _body(body))
    lines = [
        p["License"].partition("\n")[0].strip() for p in paragraphs[1:] if "Files" in p and "License" in p
    ]
    if not lines and "License" in paragraphs[0]:
        lines = [paragraphs[0]["License"].partition("\n")[0].strip()]
    if not lines or not all(lines):
        return Declared()
    refs: dict[str, str] = {}
    try:
        exprs = sorted({term for line in lines for term in _conjuncts(dep5_expression(line, refs, texts))})
    except _Unparsable:
        return Declared()
    if len(exprs) == 1:
        return Declared(exprs[0], refs)
    return Declared(" AND ".join(f"({e})" if len(_top_level(e, " OR ")) > 1 else e for e in exprs), refs)


def _top_level(expression: str, op: str) -> list[str]:
    """The expression split at ``op`` outside parentheses."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(expression):
        c = expression[i]
        depth += (c == "(") - (c == ")")
        if depth == 0 and expression.startswith(op, i):
            out.append(expression[start:i])
            i += len(op)
            start = i
            continue
        i += 1
    out.append(expression[start:])
    return out


def _unwrap(term: str) -> str:
    """``(X)`` -> ``X`` when the parentheses enclose the whole term."""
    while term.startswith("(") and term.endswith(")"):
        depth = 0
        for c in term[1:-1]:
            depth += (c == "(") - (c == ")")
            if depth < 0:
                return term
        term = term[1:-1]
    return term


def _conjuncts(expression: str) -> list[str]:
    """The top-level AND terms of an expression (``A AND (B OR C)`` -> A, B OR C); one
    with a top-level OR is one term (``A OR B AND C`` is ``A OR (B AND C)``)."""
    if len(_top_level(expression, " OR ")) > 1:
        return [expression]
    return [_unwrap(t) for t in _top_level(expression, " AND ")]


def _body(body: str) -> str:
    """A License paragraph's text: each line's leading space dropped, ``.`` lines blank."""
    out = []
    for line in body.split("\n"):
        line = line[1:] if line[:1] in (" ", "\t") else line
        out.append("" if line.strip() == "." else line)
    return "\n".join(out).strip()


__all__ = [
    "NOASSERTION",
    "Declared",
    "declared",
    "dep5_expression",
    "metadata_expression",
    "ref_id",
    "spdx_name",
]
