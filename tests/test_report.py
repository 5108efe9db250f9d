"""`drlocal analyze`: the console graph's numbers, the heat map's pixels, the reward-sanity rule and a real report."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from conftest import circle_route
from drlocal.analysis import console as cg
from drlocal.analysis import plots, report, sanity
from drlocal.tracks import load_track
from drlocal.tracks.track import Track


def entry(episode: int, trial: int, phase: str, reward: int, completion: int, ms: int = 1000,
          status: str | None = None) -> dict:
    status = status or ("Lap complete" if completion == 100 else "Off track")
    return {"reward_score": reward, "metric_time": ms, "start_time": 0, "elapsed_time_in_milliseconds": ms,
            "episode": episode, "trial": trial, "phase": phase, "completion_percentage": completion,
            "episode_status": status}


def synthetic_metrics() -> list[dict]:
    """Iterations of 3 episodes; the last training chunk is short (one episode); evaluations of 2 trials each."""
    t, e = "training", "evaluation"
    return [
        entry(1, 1, t, 10, 10), entry(2, 2, t, 20, 50), entry(3, 3, t, 30, 100, 9000),
        entry(3, 1, e, 5, 20), entry(3, 2, e, 15, 40),
        entry(4, 1, t, 0, 5), entry(5, 2, t, 40, 100, 8000), entry(6, 3, t, 50, 100, 7000),
        entry(6, 1, e, 25, 60), entry(6, 2, e, 25, 80),
        entry(7, 1, t, 70, 30),
    ]


# ----- the console's reward graph -----

def test_reward_graph_equals_hand_computation() -> None:
    g = cg.reward_graph(synthetic_metrics(), 3)
    assert g.train_reward == [(1, 20.0), (2, 30.0), (3, 70.0)]  # (10+20+30)/3, (0+40+50)/3, the short chunk: 70
    assert g.train_completion == [(1, pytest.approx(160 / 3)), (2, pytest.approx(205 / 3)), (3, 30.0)]
    assert g.eval_reward == [(1.0, 10.0), (2.0, 25.0)]  # x = episode / iteration size
    assert g.eval_completion == [(1.0, 30.0), (2.0, 70.0)]
    assert g.best_model == (2.0, 25.0)
    assert g.iterations == 3


def test_best_model_rules() -> None:
    p = cg.Point
    # ties go to the later point (JavaScript's reduce((p, c) => p.y > c.y ? p : c))
    assert cg.best_model_point([p(1, 5), p(2, 7), p(3, 7)], []) == (3, 7)
    # no reward series: the best completion
    assert cg.best_model_point([], [p(1, 50), p(2, 40)]) == (1, 50)
    assert cg.best_model_point([], []) is None


def test_evaluations_are_grouped_by_episode_in_ascending_order() -> None:
    ents = [entry(6, 1, "evaluation", 4, 10), entry(3, 1, "evaluation", 2, 20), entry(6, 2, "evaluation", 6, 30)]
    reward, completion = cg.evaluation_series(ents, 3)
    assert reward == [(1.0, 2.0), (2.0, 5.0)]
    assert completion == [(1.0, 20.0), (2.0, 20.0)]


def test_iteration_size_prefers_the_hyperparameter() -> None:
    ents = synthetic_metrics()
    assert cg.iteration_size_of(ents, {"num_episodes_between_training": 20}) == 20
    assert cg.iteration_size_of(ents, {}) == 3  # the largest training trial


def test_metrics_notebook_numbers_match_deepracer_utils(tmp_path: Path) -> None:
    """The pandas-free summaries give what deepracer-utils' TrainingMetrics computes (the Metrics notebook)."""
    pytest.importorskip("deepracer.logs")
    from deepracer.logs import metrics as drm

    ents = synthetic_metrics()
    path = tmp_path / "TrainingMetrics.json"
    path.write_text(json.dumps({"metrics": ents, "version": 2.0}))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        tm = drm.TrainingMetrics(None, fname=str(path))
    epi = cg.notebook_iteration_size(ents)
    for method in ("mean", "median", "min", "max"):
        for only in (False, True):
            ref = tm.getSummary(method=method, completedLapsOnly=only)
            its = np.array([i + 1 for _, i in ref.index])  # the library counts from 0
            for phase, pre in ((cg.TRAINING, "train"), (cg.EVALUATION, "eval")):
                s = cg.summarize(ents, phase, method, episodes_per_iteration=epi, completed_laps_only=only)
                for attr, col in (("reward", "reward"), ("completion", "completion"), ("time", "time"),
                                  ("completed", "completed")):
                    np.testing.assert_allclose(cg.align(s, getattr(s, attr), its), ref[f"{pre}_{col}"].to_numpy(),
                                               err_msg=f"{method} {only} {pre}_{col}")
                roll = ref[f"{pre}_completion"].rolling(2, min_periods=1).mean().to_numpy()
                np.testing.assert_allclose(cg.rolling(cg.align(s, s.completion, its), 2), roll)


# ----- the heat map -----

def test_heatmap_puts_a_known_reward_at_the_right_pixel() -> None:
    track = Track.from_array("circle", circle_route())
    ext = plots.track_extent(track)
    cell = 0.05
    x0, y0 = ext[0], ext[2]

    def centre(ix: int, iy: int) -> tuple[float, float]:
        return x0 + (ix + 0.5) * cell, y0 + (iy + 0.5) * cell

    (xa, ya), (xb, yb), (xc, yc) = centre(90, 56), centre(56, 100), centre(20, 56)
    # two steps in one cell average; a step outside the area is ignored
    x = np.array([xa, xb, xb + 0.01, xc, 99.0])
    y = np.array([ya, yb, yb - 0.01, yc, 0.0])
    r = np.array([10.0, 4.0, 6.0, 0.0, 50.0])
    img, extent = plots.reward_raster(x, y, r, ext, cell)
    assert extent[0] == x0 and extent[2] == y0
    assert img[56, 90] == 10.0 and img[100, 56] == 5.0 and img[56, 20] == 0.0
    assert np.isfinite(img).sum() == 3

    # and the drawn figure shows each cell's colour where that step was
    fig = plots.heatmap_figure(track, x, y, r)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    ax = fig.axes[0]
    im = ax.images[0]
    for (px, py), value in (((xa, ya), 10.0), ((xb, yb), 5.0), ((xc, yc), 0.0)):
        dx, dy = ax.transData.transform((px, py))
        got = rgba[rgba.shape[0] - round(dy), round(dx)][:3] / 255.0
        want = np.array(im.cmap(im.norm(value)))[:3]
        np.testing.assert_allclose(got, want, atol=0.03, err_msg=f"cell of reward {value}")


# ----- reward sanity -----

def synthetic_laps(reward: str, n_laps: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    """Simtrace columns of complete laps at different speeds (and a few off-track episodes) on a 17.7 m track.

    reward "per_step": 1.0 every step (slower laps collect more); "progress": the progress made this step
    (every complete lap sums to the same 100)."""
    rng = np.random.default_rng(seed)
    length, dt = 17.7, 1 / 15
    parts = []
    for ep in range(n_laps + 4):
        v = rng.uniform(0.8, 3.0)
        s = np.cumsum(v * (1 - np.exp(-np.arange(1, 3000) * dt / 0.5)) * dt)
        end = length if ep < n_laps else rng.uniform(2, 10)  # the last four go off track
        s = np.concatenate([[0.0], s[s < end], [end]])
        prog = 100 * s / length
        n = len(s)
        rw = np.ones(n) if reward == "per_step" else np.diff(prog, prepend=0.0)
        status = np.array(["prepare"] + ["in_progress"] * (n - 2) + ["lap_complete" if ep < n_laps else "off_track"],
                          dtype=object)
        parts.append({"episode": np.full(n, ep), "iteration": np.full(n, ep // 4), "steps": np.arange(1.0, n + 1),
                      "X": s, "Y": np.zeros(n), "reward": rw, "progress": prog, "tstamp": np.arange(n) * dt,
                      "closest_waypoint": np.zeros(n, dtype=int), "throttle": np.full(n, v),
                      "episode_status": status})
    return report.concat(parts)


def test_slow_lap_warning_fires_on_a_per_step_reward() -> None:
    eps = report.episodes_of(synthetic_laps("per_step"))
    assert sum(e.complete for e in eps) == 24
    warn = sanity.reward_pays_for_slow_laps(eps)
    assert isinstance(warn, sanity.SlowLapWarning) and isinstance(warn, Warning)
    assert warn.r > 0.99 and warn.n == 24
    assert "r = +1.00" in str(warn) and "24 complete laps" in str(warn)


def test_no_warning_for_a_progress_reward() -> None:
    eps = report.episodes_of(synthetic_laps("progress"))
    assert sanity.reward_pays_for_slow_laps(eps) is None
    corr = sanity.lap_time_correlation(eps)
    assert corr is not None and corr.n == 24 and abs(corr.r) < 0.3


def test_no_warning_from_too_few_laps() -> None:
    eps = report.episodes_of(synthetic_laps("per_step", n_laps=5))
    assert sanity.reward_pays_for_slow_laps(eps) is None
    assert sanity.lap_time_correlation(eps).r > 0.99


def test_only_recent_complete_laps_count() -> None:
    eps = report.episodes_of(synthetic_laps("per_step", n_laps=60))
    assert sanity.lap_time_correlation(eps, recent=40).n == 40


# ----- a real run -----

@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two training iterations and one evaluation of two trials (no resets, so that it ends at the first
    off-track) of a fresh model: the prefix folder."""
    from drlocal.config.workdir import load_job
    from drlocal.learn.evaluate import evaluate
    from drlocal.learn.trainer import Trainer
    from test_train import small_job

    root = small_job(tmp_path_factory.mktemp("report"))
    with (root / "run.env").open("a") as f:
        f.write("DR_EVAL_MAX_RESETS=0\n")
    Trainer(load_job(root, environ={}), max_iterations=2, seed=1).train()
    evaluate(load_job(root, environ={}), trials=2, continuous=False)
    return root / "data" / "bucket" / "rl-deepracer-sagemaker"


def image_sources(index: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', index.read_text())


def test_report_of_a_real_run(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    said: list[str] = []
    t0 = time.perf_counter()
    index = report.build_report(model, out, track=load_track("reinvent_base"), say=said.append)
    full_s = time.perf_counter() - t0
    assert index == out / "index.html"
    page = index.read_text()
    srcs = image_sources(index)
    for name in ("reward_graph.png", "metrics_completion.png", "metrics_laps.png", "heatmap.png", "best_laps.png",
                 "action_space.png", "action_histograms.png", "eval_trials.png", "eval_fastest.png",
                 "quintiles.png"):
        assert name in srcs, name
    for s in srcs:
        data = (out / s).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", s

    # the evaluation table: one row per trial with DRoA's cells
    ev = json.loads(next((model / "metrics" / "evaluation").glob("evaluation-*.json")).read_text())["metrics"]
    assert len(ev) == 2
    for m in ev:
        cells = [str(m["trial"]), report.mm_ss_mmm(m["elapsed_time_in_milliseconds"]),
                 f"{m['completion_percentage']}%", m["episode_status"], str(m["reset_count"]),
                 str(m["off_track_count"])]
        assert "<tr>" + "".join(f"<td>{c}</td>" for c in cells) in page, cells
    for h in report.EVAL_HEADERS:
        assert f"<th>{h}</th>" in page

    # the console graph's table
    ents = json.loads((model / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    g = cg.reward_graph(ents, 3)
    assert f"<td>{g.train_reward[0].y:.2f}</td>" in page

    # a quick refresh redraws only the cheap panels; heavy PNGs are kept as they were
    heavy = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if not p.name.startswith(("reward_graph",
                                                                                                "metrics"))}
    (model / "metrics" / "TrainingMetrics.json").touch()
    t0 = time.perf_counter()
    report.build_report(model, out, track=load_track("reinvent_base"), quick=True)
    quick_s = time.perf_counter() - t0
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name in heavy} == heavy
    assert set(image_sources(index)) == set(srcs)
    print(f"full build {full_s:.2f} s, quick refresh {quick_s:.2f} s")


def test_report_embeds_evaluation_videos(model: Path, tmp_path: Path) -> None:
    (model / "mp4" / "camera-pip").mkdir(parents=True, exist_ok=True)
    video = model / "mp4" / "camera-pip" / "0-video.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    try:
        out = tmp_path / "rep"
        index = report.build_report(model, out, track=load_track("reinvent_base"))
        srcs = re.findall(r"<video [^>]*src='([^']+)'", index.read_text())
        assert len(srcs) == 1 and not Path(srcs[0]).is_absolute()
        assert (out / srcs[0]).resolve() == video.resolve()
    finally:
        video.unlink()


def test_report_without_deepracer_utils(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "_has_deepracer_utils", lambda: False)
    monkeypatch.setattr(report, "_deepracer_utils", lambda: None)
    index = report.build_report(model, tmp_path / "r", track=load_track("reinvent_base"))
    page = index.read_text()
    assert "Missing panels" in page and "deepracer-utils" in page
    srcs = image_sources(index)
    assert "training_progress.png" not in srcs and "scatter_all.png" not in srcs and "quintiles.png" not in srcs
    assert {"reward_graph.png", "heatmap.png", "eval_trials.png", "action_space.png"} <= set(srcs)


def test_episode_numbers_match_deepracer_utils(model: Path) -> None:
    """The core's per-episode sums are deepracer-utils' `simulation_agg` numbers."""
    pytest.importorskip("deepracer.logs")
    from deepracer.logs import AnalysisUtils

    with report._quiet():
        agg = AnalysisUtils.simulation_agg(report._dru_training_frame(model), secondgroup="unique_episode")
    mine = report.episodes_of(report.load_training(model))
    assert len(mine) == len(agg)
    for e, (_, row) in zip(mine, agg.iterrows(), strict=True):
        assert (e.iteration, e.episode, e.steps, e.start_at) == (row["iteration"], row["unique_episode"],
                                                                 row["steps"], row["start_at"])
        assert e.time == pytest.approx(row["time"]) and e.reward == pytest.approx(row["reward"])
        assert e.progress == pytest.approx(row["progress"]) and e.dist == pytest.approx(row["dist"])


# ----- the command line -----

RUN_CLI = ("import sys\nfrom drlocal import cli\n"
           "if 'analyze' not in [c.name or c.callback.__name__ for c in cli.app.registered_commands]:\n"
           "    from drlocal.cli_analyze import register\n"
           "    register(cli.app, cli.console, cli._load_job)\n"
           "cli.main()\n")


def drlocal_analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`drlocal analyze ...` as a user runs it (registered here too while cli.py does not list it yet)."""
    return subprocess.run([sys.executable, "-c", RUN_CLI, "analyze", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_cli_one_line_error_for_a_missing_prefix(tmp_path: Path) -> None:
    from drlocal.config.workdir import init_workdir
    from test_cli import assert_input_error

    init_workdir(tmp_path / "job")
    r = drlocal_analyze("--dir", "job", "--prefix", "no-such-model", cwd=tmp_path)
    assert_input_error(r, "no model 'no-such-model'", "nothing to analyse", "train a model first")
    # the hint lists the prefixes that hold something to report (here: metrics), not empty or other folders
    bucket = tmp_path / "job" / "data" / "bucket"
    for name in ("b-model", "a-model"):
        (bucket / name / "metrics").mkdir(parents=True)
        (bucket / name / "metrics" / "TrainingMetrics.json").write_text('{"metrics": []}')
    (bucket / "empty-prefix" / "model").mkdir(parents=True)
    r = drlocal_analyze("--dir", "job", "--prefix", "no-such-model", cwd=tmp_path)
    assert_input_error(r, "no model 'no-such-model'", "pass --prefix with one of: a-model, b-model")


def test_prefix_lists_for_hints_are_sorted_filtered_and_capped(tmp_path: Path) -> None:
    from drlocal.store.layout import prefixes_holding

    for k in range(10):
        (tmp_path / f"m{k}" / ("model" if k % 2 else "other")).mkdir(parents=True)
    (tmp_path / "m99-a-file").write_text("")
    has_model = lambda p: (p / "model").is_dir()  # noqa: E731
    assert prefixes_holding(tmp_path, has_model) == ["m1", "m3", "m5", "m7", "m9"]
    assert prefixes_holding(tmp_path, has_model, limit=3) == ["m1", "m3", "m5", "…"]
    assert prefixes_holding(tmp_path / "missing", has_model) == []


@pytest.mark.parametrize("pandas_from", [0, 10**12])
def test_simtrace_reader_drops_a_row_cut_short(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               pandas_from: int) -> None:
    """A simtrace still being appended to ends in half a row; both readers (csv, pandas for big files) drop it."""
    if pandas_from == 0:
        pytest.importorskip("pandas")
    monkeypatch.setattr(report, "PANDAS_FROM_BYTES", pandas_from)
    path = tmp_path / "0-iteration.csv"
    text = (model / "training-simtrace" / "0-iteration.csv").read_text()
    path.write_text(text + "9,1.0,3.19,0.68")
    cols = report.read_simtrace(path)
    assert len(cols["episode"]) == len(text.splitlines()) - 1
    assert np.isfinite(cols["wall_clock"]).all() and set(cols["episode_status"]) >= {"prepare", "in_progress"}
