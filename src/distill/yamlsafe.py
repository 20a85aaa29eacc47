"""Bounded YAML: one loader for every YAML file distill reads (specs, Kubernetes manifests).

YAML from someone else's repository is untrusted input. PyYAML's safe loader still
takes two kinds of bomb: aliases (nine anchors of nine aliases each, "billion laughs",
are 300 bytes that every consumer walking the result sees as 9**9 nodes), and nesting
(each level is a recursion in the composer, in Python or in libyaml's binding, and then
again in whatever walks the result). The loader here composes with a composer that
counts while it composes, before anything recurses further:

* the nesting depth of every node, aliases included (an alias adds the height of the
  node it names), is at most :data:`MAX_YAML_DEPTH`;
* the nodes reached through aliases are at most :data:`MAX_YAML_ALIAS_NODES` or as many
  as the document has of its own, whichever is more (so aliases can at most double
  what a reader walks; the same idea as Go's yaml.v3 alias ratio);
* an alias to a node that contains it (a cycle) is refused.

Events come from libyaml when PyYAML has it (fast), composition is always the counted
Python composer. Every problem is one :class:`~distill.errors.DistillError` line with
the file and ``line:column``; the file's content is never quoted.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import Node
from yaml.resolver import Resolver

from distill.errors import DistillError
from distill.redact import tool_message

MAX_YAML_DEPTH = 64  # nesting of sequences and mappings, aliases expanded
MAX_YAML_ALIAS_NODES = 100_000  # nodes reached through aliases (or the document's own count, if more)


class YAMLLimitError(yaml.MarkedYAMLError):
    """A document beyond one of the limits above."""


class BoundedComposer(Composer):
    """PyYAML's composer, counting depth and alias expansion as it goes."""

    max_depth = MAX_YAML_DEPTH
    alias_floor = MAX_YAML_ALIAS_NODES

    def __init__(self) -> None:
        Composer.__init__(self)
        self._depth = 0
        self._nodes = 0  # composed over the whole stream
        self._aliased = 0  # reached through aliases over the whole stream
        # (nodes, height) of each finished anchored node of the current document, by id
        self._weights: dict[int, tuple[int, int]] = {}
        self._sizes: list[list[int]] = [[0, 0]]  # [nodes, height] of the nodes being composed

    def compose_document(self) -> Node | None:
        self._weights = {}
        self._sizes = [[0, 0]]
        node = Composer.compose_document(self)
        self._weights = {}
        return node

    def _limit(self, problem: str, mark: Any) -> YAMLLimitError:
        return YAMLLimitError(None, None, problem, mark)

    def _add(self, nodes: int, height: int) -> None:
        top = self._sizes[-1]
        top[0] += nodes
        top[1] = max(top[1], height + 1)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[attr-defined]
        if self.check_event(AliasEvent):  # type: ignore[attr-defined]
            target = self.anchors.get(event.anchor)
            if target is not None:  # (an undefined alias is PyYAML's own error)
                weight = self._weights.get(id(target))
                if weight is None:
                    raise self._limit("an alias refers to a node that contains it", event.start_mark)
                nodes, height = weight
                if self._depth + 1 + height > self.max_depth:
                    raise self._limit(
                        f"nested deeper than {self.max_depth} levels (through an alias)", event.start_mark
                    )
                self._aliased += nodes
                if self._aliased > max(self.alias_floor, self._nodes):
                    raise self._limit(
                        f"aliases expand to more than {max(self.alias_floor, self._nodes)} nodes",
                        event.start_mark,
                    )
                self._add(nodes, height)
            return Composer.compose_node(self, parent, index)
        if self._depth >= self.max_depth:
            raise self._limit(f"nested deeper than {self.max_depth} levels", event.start_mark)
        self._depth += 1
        self._sizes.append([1, 0])
        node = Composer.compose_node(self, parent, index)
        nodes, height = self._sizes.pop()
        self._depth -= 1
        self._nodes += 1
        if event.anchor is not None:
            self._weights[id(node)] = (nodes, height)
        self._add(nodes, height)
        return node


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class BoundedLoader(BoundedComposer, CParser, SafeConstructor, Resolver):
        """Safe loading with the limits above; libyaml's events."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # pragma: no cover (PyYAML without libyaml)
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class BoundedLoader(Reader, Scanner, Parser, BoundedComposer, SafeConstructor, Resolver):  # type: ignore[no-redef]
        """Safe loading with the limits above; PyYAML's own parser."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


def _problem(exc: yaml.MarkedYAMLError) -> str:
    # PyYAML's problems quote anchors, tags and escapes of the file: redact.tool_message
    # keeps single characters and plain names and hides the rest, so no content is echoed.
    parts = [str(p) for p in (exc.context, exc.problem) if p]
    return tool_message(" ".join((": ".join(parts) or "malformed").split()))


def _fail(exc: Exception, label: str, error: type[DistillError]) -> DistillError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark is not None else label
        return error(f"{where}: invalid YAML: {_problem(exc)}")
    if isinstance(exc, RecursionError):  # not expected with the depth limit; never a traceback
        return error(f"{label}: invalid YAML: nested too deep")
    # ValueError/OverflowError from constructing a value (an integer of 5000 digits, a
    # date that does not exist), or any other YAMLError (a reader error: a bad character)
    return error(f"{label}: invalid YAML: a value cannot be read ({type(exc).__name__})")


_ERRORS = (yaml.YAMLError, ValueError, OverflowError, TypeError, RecursionError)


def compose_yaml(
    text: str, *, label: str, error: type[DistillError] = DistillError, loader: type[Any] = BoundedLoader
) -> tuple[Any, Node | None]:
    """One document: its Python value and its node tree (for positions); (None, None) when empty."""
    ldr = loader(text)
    try:
        node = ldr.get_single_node()
        data = None if node is None else ldr.construct_document(node)
        return data, node
    except _ERRORS as exc:
        raise _fail(exc, label, error) from None
    finally:
        ldr.dispose()


def load_yaml(
    text: str, *, label: str, error: type[DistillError] = DistillError, loader: type[Any] = BoundedLoader
) -> Any:
    """One document's value (None when empty)."""
    return compose_yaml(text, label=label, error=error, loader=loader)[0]


def load_yaml_all(
    text: str,
    *,
    label: str,
    error: type[DistillError] = DistillError,
    loader: type[Any] = BoundedLoader,
    max_docs: int | None = None,
) -> list[Any]:
    """Every document's value, in order (at most ``max_docs`` of them)."""
    ldr = loader(text)
    docs: list[Any] = []
    try:
        while ldr.check_data():
            docs.append(ldr.get_data())
            if max_docs is not None and len(docs) > max_docs:
                raise error(f"{label}: more than {max_docs} YAML documents")
        return docs
    except _ERRORS as exc:
        raise _fail(exc, label, error) from None
    finally:
        ldr.dispose()
