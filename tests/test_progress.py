from __future__ import annotations

import io

from distill.progress import LineReporter, Reporter, RichReporter, make_reporter


def test_line_reporter_prints_one_line_per_finished_step() -> None:
    out = io.StringIO()
    r = LineReporter(out)
    t = r.task("fetching x", 10)
    r.advance(t, 10)
    r.done(t, "fetched x (1 KiB)")
    r.note("hello")
    assert out.getvalue() == "distill: fetched x (1 KiB)\ndistill: hello\n"


def test_reporter_choice() -> None:
    assert type(make_reporter(quiet=True)) is Reporter
    assert isinstance(make_reporter(quiet=False, stream=io.StringIO()), LineReporter)


def test_rich_reporter_runs_a_task() -> None:
    r = RichReporter()
    t = r.task("downloading", 100)
    r.advance(t, 50)
    r.done(t, "downloaded")
    r.close()
    assert r.progress.finished
