from __future__ import annotations

from distill.debian.deb822 import iter_paragraphs, paragraph_at, parse_file, parse_paragraph, scan_index

TEXT = """Package: a
Version: 1.0
Description: short
 long line one
 .
 long line two
Provides: x (= 1), y

Package: b
Version: 2:3-4
Depends: a (>= 1) | c, d:any
Provides: x


Package: c
Version: 1
"""


def test_paragraphs_and_continuations() -> None:
    paras = parse_file(TEXT.encode())
    assert [p["Package"] for p in paras] == ["a", "b", "c"]
    assert paras[0]["Description"] == "short\n long line one\n .\n long line two"
    assert paras[1]["Depends"] == "a (>= 1) | c, d:any"


def test_comments_are_not_fields() -> None:
    para = parse_paragraph("# a comment: not a field\nTypes: deb\nURIs: http://127.0.0.1/debian\n")
    assert para == {"Types": "deb", "URIs": "http://127.0.0.1/debian"}


def test_iter_paragraphs_skips_blank_runs() -> None:
    assert len(list(iter_paragraphs("\n\nA: 1\n\n \n\nB: 2\n\n"))) == 2


def test_scan_index_points_at_each_paragraph() -> None:
    data = TEXT.encode()
    names, provides = scan_index(data)
    assert set(names) == {"a", "b", "c"}
    assert sorted(provides) == ["x", "y"]
    assert [paragraph_at(data, o)["Package"] for o in provides["x"]] == ["a", "b"]
    assert paragraph_at(data, names["c"][0]) == {"Package": "c", "Version": "1"}
