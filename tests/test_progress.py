from __future__ import annotations

import io

from distill.progress import LineReporter, QuietReporter, RichReporter, make_reporter


def test_line_reporter_prints_one_line_per_finished_step() -> None:
    out = io.StringIO()
    r = LineReporter(out)
    t = r.task("fetching x", 10)
    r.advance(t, 10)
    r.done(t, "fetched x (1 KiB)")
    r.note("hello")
    assert out.getvalue() == "distill: fetched x (1 KiB)\ndistill: hello\n"


def test_reporter_choice() -> None:
    assert isinstance(make_reporter(quiet=True), QuietReporter)
    assert isinstance(make_reporter(quiet=False, stream=io.StringIO()), LineReporter)


def test_quiet_keeps_only_the_warnings() -> None:
    """-q: no progress, but a warning that changes the result (a damaged cache entry
    downloaded again) is still said (the old quiet reporter dropped it)."""
    out = io.StringIO()
    r = make_reporter(quiet=True, stream=out)
    t = r.task("fetching x", 10)
    r.advance(t, 10)
    r.done(t, "fetched x (1 KiB)")
    r.note("resolved 12 packages")
    r.note("warning: cached libc6 2.41-1 did not match its SHA256; downloading it again")
    assert (
        out.getvalue()
        == "distill: warning: cached libc6 2.41-1 did not match its SHA256; downloading it again\n"
    )


def test_rich_reporter_runs_a_task() -> None:
    r = RichReporter()
    t = r.task("downloading", 100)
    r.advance(t, 50)
    r.done(t, "downloaded")
    r.close()
    assert r.progress.finished
