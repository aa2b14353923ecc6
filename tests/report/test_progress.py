"""The tour's progress display: chapter, step, elapsed time and the estimate of time left."""

import io

import pytest

from latentspace.report.chapters import expected_seconds
from latentspace.report.tour import TourProgress, estimate_remaining, run_tour


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_estimate_before_any_chapter_is_the_prior():
    assert estimate_remaining([10, 20, 30], []) == 60
    assert estimate_remaining([10, 20, 30], [], current=0, current_elapsed=4) == 56


def test_estimate_is_rescaled_by_the_finished_chapters():
    # the first two chapters took twice their prior: the rest is expected to, as well
    assert estimate_remaining([10, 20, 30, 40], [20, 40]) == pytest.approx(2 * 70)
    assert estimate_remaining([10, 20, 30, 40], [20, 40], current=2, current_elapsed=15) == \
        pytest.approx(2 * 70 - 15)
    # faster than expected
    assert estimate_remaining([10, 10], [5]) == pytest.approx(5)


def test_estimate_never_negative_and_zero_at_the_end():
    # the current chapter overran its share: it counts as about to finish, not as negative
    assert estimate_remaining([10, 10], [10], current=1, current_elapsed=50) == 0
    assert estimate_remaining([10, 10], [12, 9]) == 0


def test_lines_name_chapter_step_elapsed_and_time_left():
    clock, stream = FakeClock(), io.StringIO()
    bar = TourProgress(["pca", "kmeans"], quick=False, stream=stream, clock=clock)
    exp_pca, exp_km = expected_seconds("pca"), expected_seconds("kmeans")
    bar.start_chapter("pca")
    clock.t += 1
    bar.step("fit PCA")
    assert bar.line() == (f"tour 1/2 pca · fit PCA · 0:01 elapsed · about "
                          f"0:{round(exp_pca + exp_km - 1):02d} left")
    clock.t += 2 * exp_pca - 1  # pca takes twice its prior
    assert bar.end_chapter() == pytest.approx(2 * exp_pca)
    bar.start_chapter("kmeans")
    bar.step("K-means for each K")
    assert bar.remaining() == pytest.approx(2 * exp_km)
    assert bar.line().startswith("tour 2/2 kmeans · K-means for each K · ")
    clock.t += 125
    bar.end_chapter()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()  # not a terminal: one line per step
    assert lines[0].startswith("tour 1/2 pca · starting")
    assert any("· fit PCA ·" in ln for ln in lines)
    assert lines[-1] == f"tour: 2 chapter(s) in {_clock(2 * exp_pca + 125)}"


def _clock(s):
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


def test_terminal_redraws_one_line_in_place():
    stream = Terminal()
    bar = TourProgress(["pca"], stream=stream, interval=3600, clock=FakeClock())
    bar.start_chapter("pca")
    bar.step("fit PCA")
    bar.end_chapter()
    bar.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # only the closing line ends it
    assert text.count("\r") == 3 and "fit PCA" in text


def test_disabled_writes_nothing():
    stream = Terminal()
    bar = TourProgress(["pca"], enabled=False, stream=stream)
    bar.start_chapter("pca")
    bar.step("x")
    bar.end_chapter()
    bar.close()
    assert stream.getvalue() == "" and bar._thread is None


def test_failed_run_says_so():
    stream = io.StringIO()
    bar = TourProgress(["pca"], stream=stream, clock=FakeClock())
    bar.start_chapter("pca")
    bar.close(ok=False)
    assert stream.getvalue().splitlines()[-1].startswith("tour stopped after")


def test_run_tour_reports_every_step_of_the_chapter(tmp_path, capsys):
    summary = run_tour("digits", out=tmp_path, quick=True, chapters=["pca"], progress=True)
    err = capsys.readouterr().err
    steps = [ln.split(" · ")[1] for ln in err.splitlines() if ln.startswith("tour 1/1 pca")]
    assert steps[:3] == ["loading digits", "starting", "fit PCA"] and "encoding figures" in steps
    assert err.splitlines()[-1].startswith("tour: 1 chapter(s) in")
    assert summary["chapters"]["pca"]["seconds"] > 0
    import matplotlib.pyplot as plt

    plt.close("all")


def test_run_tour_threads_are_set_for_the_run_and_restored(tmp_path, monkeypatch):
    import torch

    from latentspace.report import tour as tour_mod

    seen = []

    def probe(ctx):
        from latentspace.report import Chapter

        seen.append(torch.get_num_threads())
        return Chapter(key="probe", title="Probe", intro="", formula="", numbers={"x": 1})

    monkeypatch.setattr(tour_mod, "select_chapters", lambda chapters: [("probe", probe)])
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    tour_mod.run_tour("digits", out=tmp_path, threads=target, progress=False)
    assert seen == [target] and torch.get_num_threads() == before
    tour_mod.run_tour("digits", out=tmp_path, threads=None, progress=False)
    assert seen[-1] == before
    with pytest.raises(ValueError, match="threads"):
        tour_mod.run_tour("digits", out=tmp_path, threads=0, progress=False)
