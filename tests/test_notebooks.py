"""The community's analysis notebooks as an acceptance test of drlocal's output.

aws-deepracer-community/deepracer-analysis (Training_analysis, Evaluation_analysis, Metrics; vendored unmodified in
tests/data/deepracer-analysis/, see NOTICE.md there) is what DeepRacer users open on a DRfC model folder. A tiny
drlocal run is trained and evaluated, then each notebook is executed headless with nbclient on that run's model
folder. Only the cells that point a notebook at its data are changed, in memory: the file-handler / S3 cell (to
`FSFileHandler(model_folder=<prefix folder>)`, or the Metrics notebook's own "from file" variant) and the
track-name constant of the track cell (to the run's WORLD_NAME). Every cell must run without error, figures
included: the kernel uses Jupyter's inline backend, so every figure is drawn (Agg) into a PNG as a user would see
it; a plain Agg backend never draws and hides draw-time errors. The one exception is a deepracer-utils bug that
this run's data can trigger (see `_upstream_failures`): then exactly that cell must fail, with exactly that error.

Then deepracer-utils' numbers (DeepRacerLog traces, AnalysisUtils aggregates, the stability table,
metrics.TrainingMetrics) are checked against numbers hand-computed from drlocal's own files.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from drlocal.config.workdir import load_job
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer
from test_train import small_job

nbformat = pytest.importorskip("nbformat", reason="nbformat is part of the test extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is part of the test extra")
pytest.importorskip("ipykernel", reason="ipykernel is part of the test extra")

NOTEBOOK_DIR = Path(__file__).parent / "data" / "deepracer-analysis"
NOTEBOOKS = ("Training_analysis", "Evaluation_analysis", "Metrics")
PREFIX = "rl-deepracer-sagemaker"
# 16 episodes in 4 iterations: the Training notebook's examples look at episodes 9, 10 and 12 and iteration 3
# (its `iteration_id = 10` example would need 11 iterations: that figure stays empty).
ITERATIONS = 4
PER_ITERATION = 4
TRIALS = 2
CELL_TIMEOUT = 180  # s; the slowest cells (reward heat maps of the whole track) take a few seconds
STEP = 1 / 15  # s, one simulation step
# The simapp's metrics time an episode from its reset, one step before the simtrace's PREPARE row, to its last
# step (the console sample logs shipped with deepracer-analysis show it): `elapsed_time_in_milliseconds` is the
# simtrace span (what AnalysisUtils.simulation_agg calls `time`) plus one step, to within MS milliseconds (tstamp
# has 3 decimals; drlocal's trainer truncates start/end to whole ms where the simapp rounds them).
MS = 2.0


@dataclass(frozen=True)
class Run:
    model_folder: Path  # <run>/data/bucket/<prefix>/
    world: str
    stamp: str  # the evaluation folder's 14-digit stamp


def _params(path: Path) -> dict[str, str]:
    """training_params.yaml: a flat map of quoted strings (what the simapp reads)."""
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line and not line.startswith("---"):
            k, v = line.split(":", 1)
            out[k.strip().strip("'\"")] = v.strip().strip("'\"")
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = small_job(tmp_path_factory.mktemp("nbrun"), num_episodes_between_training=PER_ITERATION,
                     term_cond_max_episodes=ITERATIONS * PER_ITERATION)
    Trainer(load_job(root, environ={}), max_iterations=ITERATIONS, seed=1).train()
    # The barely trained car leaves the track; the simapp re-places it (DR_EVAL_MAX_RESETS=100) and the trial ends
    # with a complete lap, which the Evaluation notebook's "fastest lap" cells need. No penalty pause: quicker.
    job = load_job(root, environ={}, overrides={"DR_EVAL_OFF_TRACK_PENALTY": "0.0"})
    res = evaluate(job, trials=TRIALS, continuous=False)
    assert any(lap.status == "lap_complete" for lap in res.laps), res.laps
    folder = root / "data" / "bucket" / PREFIX
    (evaluation,) = folder.glob("evaluation-*")
    return Run(folder, _params(folder / "training_params.yaml")["WORLD_NAME"], evaluation.name.split("-", 1)[1])


# ---------------------------------------------------------------------------------------------------------------
# Running the notebooks
# ---------------------------------------------------------------------------------------------------------------


def _kernel_manager(tmp: Path) -> Any:
    """A kernel on this interpreter (the venv), whatever kernelspecs or IPython profile the machine has."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = tmp / "kernels" / "drlocal-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "drlocal test kernel", "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "IPYTHONDIR": str(tmp / "ipython")},
    }))
    # the connection file goes in `tmp` too: by default jupyter_client leaves a tmpXXXX.json in /tmp per kernel
    return AsyncKernelManager(kernel_name="drlocal-test", connection_file=str(tmp / "kernel-connection.json"),
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


def _workdir(tmp: Path) -> Path:
    """The notebooks' working directory: `TrackIO()` reads ./tracks/*.npy; drlocal's bundled routes go there."""
    work = tmp / "work"
    with resources.as_file(resources.files("drlocal.tracks") / "routes") as src:
        shutil.copytree(src, work / "tracks", ignore=shutil.ignore_patterns("*.txt", "*.md"))
    return work


def _cell_with(nb: Any, text: str) -> int:
    hits = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    assert len(hits) == 1, f"{text!r} found in cells {hits}: the vendored notebook changed"
    return hits[0]


def _replace(nb: Any, text: str, source: str) -> int:
    """The one code cell containing `text` becomes `source`."""
    i = _cell_with(nb, text)
    nb.cells[i].source = source
    return i


def _track_cell(nb: Any, world: str) -> int:
    # The world is guessed from the log (only console robomaker logs carry it), else this constant is used.
    old = 'track_name = "reinvent_base"'
    i = _cell_with(nb, old)
    nb.cells[i].source = nb.cells[i].source.replace(old, f"track_name = {world!r}")
    return i


def _prepare(name: str, run: Run) -> tuple[Any, list[int]]:
    """The vendored notebook with its data cells pointed at `run`; returns it and the changed cells."""
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    folder = str(run.model_folder)
    if name == "Training_analysis":
        return nb, [
            _replace(nb, "fh = FSFileHandler(model_folder='logs/sample-console-logs/')",
                     f"fh = FSFileHandler(model_folder={folder!r})\nlog = DeepRacerLog(filehandler=fh)\n"
                     "log.load_training_trace()"),
            _track_cell(nb, run.world),
        ]
    if name == "Evaluation_analysis":
        return nb, [
            _replace(nb, "fh = S3FileHandler(bucket=BUCKET, prefix=PREFIX",
                     f"fh = FSFileHandler(model_folder={folder!r})\nlog = DeepRacerLog(filehandler=fh)\n"
                     "log.load_evaluation_trace()"),
            _track_cell(nb, run.world),
        ]
    # Metrics: the notebook's own "Alternative from file", on drlocal's TrainingMetrics.json
    metrics = str(run.model_folder / "metrics" / "TrainingMetrics.json")
    return nb, [_replace(nb, "tm = metrics.TrainingMetrics(BUCKET, model_name=PREFIX",
                         f"tm = metrics.TrainingMetrics(None, fname={metrics!r})")]


def _outputs(cell: Any) -> list[Any]:
    return cell.get("outputs", []) if cell.cell_type == "code" else []


def _errors(nb: Any) -> dict[int, str]:
    """{cell: "ename: evalue"} of the cells that raised."""
    return {i: f"{o['ename']}: {o['evalue']}" for i, cell in enumerate(nb.cells) for o in _outputs(cell)
            if o.get("output_type") == "error"}


def _stdout_of(cell: Any) -> str:
    return "".join(o.get("text", "") for o in _outputs(cell) if o.get("output_type") == "stream")


def _stdout(nb: Any) -> str:
    return "".join(_stdout_of(c) for c in nb.cells)


def _figures(cell: Any) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(cell))


PLOTTING = ("pu.", "au.scatter", "au.analyze", "abu.", "plotProgress", "plt.figure", ".plot.bar")
NO_DATA = "No complete laps yet."  # Training_analysis prints it instead of the complete-laps figure


def _upstream_failures(name: str, run: Run, nb: Any) -> dict[int, str]:
    """Cells that fail on this run's data for a reason outside drlocal, with the error they must raise.

    deepracer-utils (1.5.6) `TrainingMetrics.plotProgress(..., completedLapsOnly=True)` (Metrics cell "Laptime for
    completed laps") cannot draw when exactly one phase (training or evaluation) has complete laps: the other
    series is all NaN, its scatter offsets are fully masked and matplotlib's category axis (x = 'r-i' strings)
    raises ConversionError at draw time (matplotlib 3.9, 3.10 and 3.11 alike). A DRfC model whose greedy
    evaluation laps complete before its training laps do hits the same.
    """
    if name != "Metrics":
        return {}
    raw = json.loads((run.model_folder / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    if len({m["phase"] for m in raw if m["episode_status"] == "Lap complete"}) != 1:
        return {}
    return {_cell_with(nb, "completedLapsOnly=True"): "ConversionError: Failed to convert value(s) to axis units"}


@pytest.fixture(scope="module")
def notebook(run: Run, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Any, list[int]]]:
    """notebook(name) -> (the executed notebook with its outputs, the changed cells); each runs once."""
    tmp = tmp_path_factory.mktemp("notebooks")
    work = _workdir(tmp)
    done: dict[str, tuple[Any, list[int]]] = {}

    def get(name: str) -> tuple[Any, list[int]]:
        if name not in done:
            nb, changed = _prepare(name, run)
            client = nbclient.NotebookClient(nb, km=_kernel_manager(tmp / name), timeout=CELL_TIMEOUT,
                                             allow_errors=True, resources={"metadata": {"path": str(work)}})
            client.execute()
            done[name] = nb, changed
        return done[name]

    return get


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_every_cell(name: str, run: Run, notebook: Callable[[str], tuple[Any, list[int]]]) -> None:
    nb, changed = notebook(name)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    assert set(changed) <= set(code) and len(set(changed)) == len(changed) <= 2
    assert [i for i in code if not nb.cells[i].get("execution_count")] == []
    expected = _upstream_failures(name, run, nb)
    errors = _errors(nb)
    assert sorted(errors) == sorted(expected), errors
    assert all(errors[i].startswith(e) for i, e in expected.items()), errors
    # every plotting cell drew its figure (or said why there is none)
    no_figure = [i for i in code if i not in expected and any(p in nb.cells[i].source for p in PLOTTING)
                 and not _figures(nb.cells[i]) and NO_DATA not in _stdout_of(nb.cells[i])]
    assert no_figure == []


def test_notebooks_show_the_run(notebook: Callable[[str], tuple[Any, list[int]]]) -> None:
    text = _stdout(notebook("Training_analysis")[0])
    assert "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW" in text  # log.agent_and_network() read model_metadata.json
    assert "OVERALL" in text  # the stability table
    assert f"Number of iterations =  {ITERATIONS - 1}" in text  # (it prints the largest iteration number)
    assert f"Number of episodes =  {ITERATIONS * PER_ITERATION - 1}" in text
    assert "You probably don't have episode with this number" not in text
    assert "The dataframe is empty" not in text
    text = _stdout(notebook("Metrics")[0])
    assert f"Iterations: {ITERATIONS}, Training episodes: {ITERATIONS * PER_ITERATION}" in text
    assert f"Episodes: {ITERATIONS * PER_ITERATION}" in text


# ---------------------------------------------------------------------------------------------------------------
# deepracer-utils' numbers against drlocal's files
# ---------------------------------------------------------------------------------------------------------------


def _read_simtrace(path: Path) -> dict[int, list[dict[str, str]]]:
    """{episode: rows} of one simtrace CSV, in file order."""
    episodes: dict[int, list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            episodes[int(row["episode"])].append(row)
    return dict(episodes)


def _episode_numbers(rows: list[dict[str, str]]) -> tuple[float, bool, float]:
    """(final progress, lap complete, seconds from the PREPARE row to the last step)."""
    assert rows[0]["episode_status"] == "prepare"
    progress = max(float(r["progress"]) for r in rows)
    return progress, rows[-1]["episode_status"] == "lap_complete", float(rows[-1]["tstamp"]) - float(rows[0]["tstamp"])


def test_training_trace_numbers(run: Run) -> None:
    from deepracer.logs import AnalysisUtils, DeepRacerLog, FSFileHandler

    files = {int(p.name.split("-")[0]): p for p in run.model_folder.glob("training-simtrace/*-iteration.csv")}
    traces = {k: _read_simtrace(files[k]) for k in sorted(files)}
    assert list(traces) == list(range(ITERATIONS))
    hp = json.loads((run.model_folder / "ip" / "hyperparameters.json").read_text())

    log = DeepRacerLog(filehandler=FSFileHandler(model_folder=str(run.model_folder)))
    log.load_training_trace()
    df = log.dataframe()
    assert sorted(df["iteration"].unique()) == list(traces)
    per_iteration = df.groupby("iteration")["episode"].nunique().to_dict()
    assert per_iteration == {k: len(v) for k, v in traces.items()}
    assert set(per_iteration.values()) == {hp["num_episodes_between_training"]} == {PER_ITERATION}
    assert df["unique_episode"].nunique() == ITERATIONS * PER_ITERATION
    assert len(df) == sum(len(rows) for eps in traces.values() for rows in eps.values())
    assert log.hyperparameters() == hp

    agg = AnalysisUtils.simulation_agg(df)
    assert len(agg) == ITERATIONS * PER_ITERATION
    for k, eps in traces.items():
        mine = {e: _episode_numbers(rows) for e, rows in eps.items()}
        theirs = agg[agg["iteration"] == k].set_index("episode")
        assert sorted(theirs.index) == sorted(mine)
        for e, (progress, complete, seconds) in mine.items():
            assert theirs.loc[e, "progress"] == pytest.approx(progress)
            assert bool(theirs.loc[e, "complete"]) == complete
            assert theirs.loc[e, "steps"] == len(eps[e])
            assert theirs.loc[e, "time"] == pytest.approx(seconds, abs=1e-6)
            assert theirs.loc[e, "reward"] == pytest.approx(sum(float(r["reward"]) for r in eps[e]))
        # the completion-rate panel of analyze_training_progress: complete laps / episodes of the iteration
        assert theirs["complete"].mean() == pytest.approx(sum(c for _, c, _ in mine.values()) / len(mine))

    # the stability table: one row per iteration, 15 Hz simulation steps
    stability = log.stability.analyze()
    assert stability["iteration"].tolist() == list(range(ITERATIONS))
    assert stability["avg_ms"].tolist() == pytest.approx([1000 * STEP] * ITERATIONS, abs=0.5)

    # TrainingMetrics.json tells the same story as the simtrace (episodes are 1-based and global there)
    metrics = json.loads((run.model_folder / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    training = [m for m in metrics if m["phase"] == "training"]
    ordered = [rows for k in traces for _, rows in sorted(traces[k].items())]
    assert len(training) == len(ordered)
    for m, rows in zip(training, ordered, strict=True):
        progress, complete, seconds = _episode_numbers(rows)
        assert m["completion_percentage"] == int(progress)
        assert (m["episode_status"] == "Lap complete") == complete
        assert m["elapsed_time_in_milliseconds"] == pytest.approx(1000 * (seconds + STEP), abs=MS)
    laps = agg[agg["complete"] == 1]
    if len(laps):  # best lap time, as the notebook's "five fastest complete laps" table shows it
        best = min(m["elapsed_time_in_milliseconds"] for m in training if m["episode_status"] == "Lap complete")
        assert laps["time"].min() + STEP == pytest.approx(best / 1000, abs=1e-3)


def test_evaluation_trace_numbers(run: Run) -> None:
    from deepracer.logs import AnalysisUtils, DeepRacerLog, FSFileHandler

    trace = _read_simtrace(run.model_folder / f"evaluation-{run.stamp}" / "evaluation-simtrace" / "0-iteration.csv")
    mine = {e: _episode_numbers(rows) for e, rows in trace.items()}
    assert sorted(mine) == list(range(TRIALS))  # plot_evaluations wants 0-based, consecutive ids
    results = json.loads((run.model_folder / "metrics" / "evaluation" / f"evaluation-{run.stamp}.json").read_text())
    laps = sorted(results["metrics"], key=lambda m: m["trial"])
    assert [m["trial"] for m in laps] == list(range(1, TRIALS + 1))

    log = DeepRacerLog(filehandler=FSFileHandler(model_folder=str(run.model_folder)))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert df["stream"].unique().tolist() == [run.stamp]
    agg = AnalysisUtils.simulation_agg(df, "stream", is_eval=True).set_index("episode")
    assert sorted(agg.index) == sorted(mine)
    for e, (progress, complete, seconds) in mine.items():
        lap = laps[e]
        assert agg.loc[e, "progress"] == pytest.approx(progress)
        assert lap["completion_percentage"] == int(progress)
        assert bool(agg.loc[e, "complete"]) == complete == (lap["episode_status"] == "Lap complete")
        assert agg.loc[e, "time"] == pytest.approx(seconds, abs=1e-6)
        assert lap["elapsed_time_in_milliseconds"] == pytest.approx(1000 * (seconds + STEP), abs=MS)
        off_track = sum(r["episode_status"] == "off_track" for r in trace[e])
        assert agg.loc[e, "off_track"] == off_track == lap["off_track_count"]
    assert agg["complete"].mean() == pytest.approx(sum(c for _, c, _ in mine.values()) / TRIALS)
    done = [m["elapsed_time_in_milliseconds"] for m in laps if m["episode_status"] == "Lap complete"]
    assert done  # the fixture made sure; the notebook's "fastest lap" is this one
    assert agg[agg["complete"] == 1]["time"].min() + STEP == pytest.approx(min(done) / 1000, abs=1e-3)


def test_training_metrics_numbers(run: Run) -> None:
    from deepracer.logs import metrics as drmetrics

    path = run.model_folder / "metrics" / "TrainingMetrics.json"
    raw = json.loads(path.read_text())["metrics"]
    training = [m for m in raw if m["phase"] == "training"]
    evals = [m for m in raw if m["phase"] == "evaluation"]
    n_eval = int(_params(run.model_folder / "training_params.yaml")["MIN_EVAL_TRIALS"])

    tm = drmetrics.TrainingMetrics(None, fname=str(path))
    assert tm.episodes_per_iteration == PER_ITERATION  # inferred from max(trial)
    train, ev = tm.getTraining(), tm.getEvaluation()
    assert len(train) == len(training) == ITERATIONS * PER_ITERATION
    assert len(ev) == len(evals) == ITERATIONS * n_eval
    # iteration k holds training episodes k*E+1 … (k+1)*E and the evaluation that follows them
    assert train["iteration"].tolist() == [(m["episode"] - 1) // PER_ITERATION for m in training]
    assert train.groupby("iteration").size().tolist() == [PER_ITERATION] * ITERATIONS
    assert ev.groupby("iteration").size().tolist() == [n_eval] * ITERATIONS
    assert train["completion"].tolist() == [m["completion_percentage"] for m in training]
    assert train["time"].tolist() == pytest.approx([m["elapsed_time_in_milliseconds"] / 1000 for m in training])

    summary = tm.getSummary(method="mean", summary_index=["r-i", "master_iteration"])
    assert len(summary) == ITERATIONS
    for k, (_, row) in enumerate(summary.iterrows()):
        tr = training[k * PER_ITERATION:(k + 1) * PER_ITERATION]
        ex = evals[k * n_eval:(k + 1) * n_eval]
        assert row["train_episodes"] == PER_ITERATION and row["eval_episodes"] == n_eval
        assert row["train_completion"] == pytest.approx(sum(m["completion_percentage"] for m in tr) / PER_ITERATION)
        assert row["eval_completion"] == pytest.approx(sum(m["completion_percentage"] for m in ex) / n_eval)
        assert row["train_reward"] == pytest.approx(sum(m["reward_score"] for m in tr) / PER_ITERATION)
        assert row["train_completed"] == pytest.approx(
            sum(m["episode_status"] == "Lap complete" for m in tr) / PER_ITERATION)
        assert row["eval_completed"] == pytest.approx(sum(m["episode_status"] == "Lap complete" for m in ex) / n_eval)

    for rows, frame in ((training, train), (evals, ev)):  # best lap time (the notebook's "fastest laps" tables)
        done = [m["elapsed_time_in_milliseconds"] / 1000 for m in rows if m["episode_status"] == "Lap complete"]
        best = frame[frame["complete"] == 1]["time"]
        assert len(best) == len(done)
        if done:
            assert math.isclose(best.min(), min(done))


def test_evaluation_entries_carry_the_last_training_trial(run: Run) -> None:
    # simapp bundle/markov/metrics/s3_metrics.py TrainingMetrics.append_episode_metrics: `_eval_trials_` counts
    # training episodes only (reset when training resumes), and the console sample logs in deepracer-analysis
    # show `"phase": "evaluation", "episode": 20, "trial": 20` for all five evaluations after 20 episodes.
    raw = json.loads((run.model_folder / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    evals = [m for m in raw if m["phase"] == "evaluation"]
    assert evals and all(m["trial"] == PER_ITERATION for m in evals), [m["trial"] for m in evals]
