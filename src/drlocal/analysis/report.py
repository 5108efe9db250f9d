"""`drlocal analyze`: a static HTML report of one model prefix, with the views DeepRacer users know.

`build_report(model_root, out_dir, track=...)` reads the DRfC layout drlocal writes under `<bucket>/<prefix>/`
(`metrics/TrainingMetrics.json`, `training-simtrace/<K>-iteration.csv`, `evaluation-<stamp>/…`, `metrics/evaluation/
evaluation-<stamp>.json`, `mp4/camera-*/0-video.mp4`, `model/*.json`, `ip/hyperparameters.json`, the params YAMLs)
and writes `index.html` plus one PNG per panel into `out_dir`, viewable from disk (relative links, no server, no
script). Sections, each named after its counterpart:

* Overview — run facts, checkpoints (`deepracer_checkpoints.json`), action space, hyperparameters.
* Reward graph — DeepRacer on AWS's console graph, numbers from `console.reward_graph`.
* Metrics notebook — completion per iteration (median / mean / max), percent complete laps, lap time of complete
  laps, best-lap progression, fastest laps (`Metrics.ipynb` M4–M9).
* Reward sanity — `sanity.reward_pays_for_slow_laps` over the latest complete training laps.
* Speed — per iteration steps, wall time, ms per step, real-time factor (speed-up over Gazebo's 15 steps/s), time
  between iterations (policy update + evaluation), from the simtrace `wall_clock` column; with deepracer-utils also
  its `SimtraceStabilityAnalyzer` table (Training notebook T3).
* Training analysis — deepracer-utils' `simulation_agg` drawn as the training-progress grid (T6) and the scatter
  aggregates of all and of complete laps (T7/T8). The only panels that need deepracer-utils (and pandas).
* Track — reward heat map (T19), paths of the best laps (T18), reward per waypoint of the best lap (T17), top
  episodes tables (T10–T14).
* Action space — action index map, steering / speed histograms, action breakdown (T24, ActionSpace notebook).
* Evaluation — DRoA's evaluations selector and results table (Trial, Time MM:SS.mmm, % completed, Status, Resets,
  Off-tracks, Off-track penalty, Crashes, Crash penalty), per-trial paths coloured by speed (E7), the fastest lap
  coloured by measured speed (E8), and the evaluation MP4s as `<video>` elements.

Costs: `quick=True` (the per-iteration refresh during training) redraws only the panels that read
`TrainingMetrics.json` and the speed / sanity tables, parsing only simtrace files that changed since the last call
(their per-episode summaries are cached in `report-state.json`), and keeps the other sections of the last full
build. A full build also skips a section whose inputs did not change since the last build.

Iteration numbers: the console's graphs count from 1 (iteration n produced checkpoint n); simtrace-based panels use
the simtrace file number K = n − 1, as deepracer-utils and `drlocal replay --iteration K` do.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import io
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from drlocal.analysis import console as cg
from drlocal.analysis import sanity
from drlocal.errors import DrlocalError
from drlocal.store.layout import training_simtrace_dir
from drlocal.tracks.track import Track

STATE_FILE = "report-state.json"
STATE_VERSION = 1
GAZEBO_STEPS_PER_S = 15.0
CAMERAS = ("camera-pip", "camera-45degree", "camera-topview")
CAMERA_TITLES = {"camera-pip": "Follow camera with the evaluation overlay (camera-pip)",
                 "camera-45degree": "Follow camera (camera-45degree)", "camera-topview": "Top view (camera-topview)"}
#: objects `drlocal analyze` pulls from a remote bucket (fnmatch patterns relative to the prefix)
PULL_PATTERNS = ["metrics/*", "training-simtrace/*", "evaluation-*/evaluation-simtrace/*", "mp4/*",
                 "model/deepracer_checkpoints.json", "model/model_metadata.json", "ip/hyperparameters.json",
                 "training_params*.yaml", "evaluation_params*.yaml"]
Say = Callable[[str], None]


# ======================================================================== reading the model folder

def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON (a report never stops on one bad side file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_params_yaml(path: Path) -> dict[str, str]:
    """The flat `'KEY': 'value'` / `'KEY':\\n- 'value'` YAML the simapp's params files use, as str → str (the first
    list item for lists). No YAML library: drlocal does not depend on one and these files are that simple."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    key = None
    for line in lines:
        m = re.match(r"^'?([A-Za-z0-9_]+)'?:\s*(.*)$", line)
        if m:
            key, val = m.group(1), m.group(2).strip()
            if val:
                out[key] = val.strip("'\"")
                key = None
        elif key and line.lstrip().startswith("- "):
            out[key] = line.lstrip()[2:].strip().strip("'\"")
            key = None
    return out


FLOAT_COLS = ("steps", "X", "Y", "steer", "throttle", "reward", "progress", "tstamp", "pause_duration", "wall_clock")
INT_COLS = ("episode", "closest_waypoint")
PANDAS_FROM_BYTES = 4_000_000  # larger simtraces are parsed by pandas' C reader when it is installed (≈15× faster)


def _floats(values: Sequence[str]) -> np.ndarray:
    try:
        return np.array(values, dtype=float)
    except ValueError:
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            with contextlib.suppress(ValueError):
                out[i] = float(v)
        return out


def _action_ints(values: Iterable[Any]) -> np.ndarray:
    """Discrete action indices; -1 for continuous actions (`[<steer> <speed>]`) and anything unreadable."""
    return np.array([int(v) if str(v).isdigit() else -1 for v in values], dtype=np.int64)


def _columns(raw: Any, n: int) -> dict[str, np.ndarray]:
    """The report's columns from raw per-column sequences (csv strings or pandas Series), NaN when absent."""
    cols: dict[str, np.ndarray] = {}
    for name in FLOAT_COLS:
        cols[name] = _floats(raw[name]) if name in raw else np.full(n, np.nan)
    for name in INT_COLS:
        cols[name] = np.nan_to_num(_floats(raw[name])).astype(np.int64) if name in raw else np.zeros(n, np.int64)
    cols["action"] = _action_ints(raw["action"]) if "action" in raw else np.full(n, -1, dtype=np.int64)
    status = raw["episode_status"] if "episode_status" in raw else [""] * n
    cols["episode_status"] = np.array([str(v) for v in status], dtype=object)
    return cols


def read_simtrace(path: Path) -> dict[str, np.ndarray]:
    """One simtrace CSV as (N,) arrays under the header's names: episode, steps, X, Y [m], steer [°], throttle
    [m/s], action (index, -1 if continuous), reward, progress [%], closest_waypoint, tstamp [s], episode_status,
    pause_duration [s], wall_clock [Unix s].

    A row cut short by a writer still appending (training in progress) is dropped; columns missing from older
    traces (`wall_clock`, `pause_duration`) are NaN."""
    if path.stat().st_size >= PANDAS_FROM_BYTES and _has_pandas():
        import pandas as pd

        df = pd.read_csv(path, dtype={"action": str, "episode_status": str})
        df = df.dropna(subset=[df.columns[-1]])  # a cut row leaves the last column empty
        return _columns({c: df[c].to_numpy() for c in df.columns}, len(df))
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [r for r in reader if len(r) == len(header)]
    raw = dict(zip(header, zip(*rows, strict=True), strict=True)) if rows else {h: () for h in header}
    return _columns(raw, len(rows))


def _has_pandas() -> bool:
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


def concat(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns of several traces one after the other (keys of the first part)."""
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def simtrace_files(root: Path) -> list[tuple[int, Path]]:
    """(K, path) of `training-simtrace/<K>-iteration.csv` (a multi-worker run: worker 0's), by K."""
    found = []
    for p in training_simtrace_dir(root).glob("*-iteration.csv"):
        m = re.fullmatch(r"(\d+)-iteration\.csv", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_training(root: Path) -> dict[str, np.ndarray]:
    """All training simtraces as one set of columns with an `iteration` column (the file's K)."""
    parts = []
    for k, p in simtrace_files(root):
        cols = read_simtrace(p)
        cols["iteration"] = np.full(len(cols["episode"]), k, dtype=np.int64)
        parts.append(cols)
    return concat(parts)


def file_sig(path: Path) -> str:
    """Size and modification time: what says a file changed between two report builds."""
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


# ======================================================================== per-episode numbers

class Episode(NamedTuple):
    """One episode of a simtrace, as deepracer-utils' `simulation_agg` sums it up.

    steps: max − min of the steps column + 1; time: last − first tstamp [s] (sim time, penalties included);
    progress: max [%]; reward: sum; start_at: first closest waypoint; dist: path length [m] without the
    'prepare' row; speed: mean commanded speed [m/s]; off_track / crashed: rows with that status."""

    iteration: int
    episode: int
    steps: int
    time: float
    progress: float
    reward: float
    start_at: int
    dist: float
    speed: float
    status: str
    off_track: int
    crashed: int

    @property
    def complete(self) -> bool:
        return self.progress >= 100.0 - 1e-9


def episodes_of(cols: dict[str, np.ndarray], keys: tuple[str, ...] = ("iteration", "episode")) -> list[Episode]:
    """Episodes of a trace in (iteration, episode) order. Each row belongs to the episode of its key columns;
    rows of one episode keep their file order (parallel cars interleave their rows in a simtrace)."""
    n = len(cols.get("episode", ()))
    if not n:
        return []
    it = cols["iteration"] if "iteration" in keys and "iteration" in cols else np.zeros(n, dtype=np.int64)
    key = np.stack([it, cols["episode"]], axis=1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    status = cols["episode_status"]
    out = []
    for g, (k, e) in enumerate(uniq):
        rows = order[bounds[g]:bounds[g + 1]]
        x, y = cols["X"][rows], cols["Y"][rows]
        live = status[rows][1:] != "prepare"
        step = np.hypot(np.diff(x), np.diff(y))
        st = status[rows]
        out.append(Episode(
            iteration=int(k), episode=int(e),
            steps=int(np.nanmax(cols["steps"][rows]) - np.nanmin(cols["steps"][rows]) + 1),
            time=float(np.nanmax(cols["tstamp"][rows]) - np.nanmin(cols["tstamp"][rows])),
            progress=float(np.nanmax(cols["progress"][rows])), reward=float(np.nansum(cols["reward"][rows])),
            start_at=int(cols["closest_waypoint"][rows[0]]), dist=float(np.nansum(step[live])),
            speed=float(np.nanmean(cols["throttle"][rows])), status=str(st[-1]),
            off_track=int(np.sum(st == "off_track")), crashed=int(np.sum(st == "crashed")),
        ))
    return out


def rows_of(cols: dict[str, np.ndarray], iteration: int | None, episode: int) -> np.ndarray:
    """Row indices of one episode (training: iteration K and episode; evaluation: iteration None)."""
    m = cols["episode"] == episode
    if iteration is not None and "iteration" in cols:
        m &= cols["iteration"] == iteration
    return np.flatnonzero(m)


def best_laps(episodes: Sequence[Episode], n: int = 3) -> list[Episode]:
    """The `n` fastest complete laps; filled up with the most progressed episodes when fewer laps are complete."""
    done = sorted((e for e in episodes if e.complete), key=lambda e: e.time)
    rest = sorted((e for e in episodes if not e.complete), key=lambda e: (-e.progress, e.time))
    return (done + rest)[:n]


# ======================================================================== speed (wall_clock)

@dataclass(frozen=True)
class SpeedRow:
    """Throughput of one iteration (or evaluation) from the simtrace `wall_clock` column [Unix s].

    steps: simtrace rows (all cars); wall_s: first to last row; between_s: from this iteration's last row to the
    next one's first (policy update + evaluation); ms_per_step = wall / steps; rtf = simulated seconds (steps at
    15 per second, Gazebo's rate) per wall second — the speed-up over the simapp."""

    label: str
    episodes: int
    steps: int
    wall_s: float
    first: float
    last: float
    between_s: float | None = None

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.wall_s / self.steps if self.steps and self.wall_s > 0 else math.nan

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.wall_s > 0 else math.nan

    @property
    def rtf(self) -> float:
        return self.steps_per_s / GAZEBO_STEPS_PER_S


def speed_row(label: str, cols: dict[str, np.ndarray]) -> SpeedRow:
    """The throughput numbers of one simtrace file."""
    wc = cols["wall_clock"][np.isfinite(cols["wall_clock"])]
    first, last = (float(wc.min()), float(wc.max())) if wc.size else (math.nan, math.nan)
    return SpeedRow(label=label, episodes=len(np.unique(cols["episode"])), steps=len(cols["episode"]),
                    wall_s=last - first if wc.size else math.nan, first=first, last=last)


def with_gaps(rows: list[SpeedRow]) -> list[SpeedRow]:
    """Fill `between_s` from each row's last wall clock to the next row's first (None for the last one)."""
    out = []
    for i, r in enumerate(rows):
        gap = rows[i + 1].first - r.last if i + 1 < len(rows) else None
        out.append(SpeedRow(r.label, r.episodes, r.steps, r.wall_s, r.first, r.last,
                            gap if gap is not None and math.isfinite(gap) and gap >= 0 else None))
    return out


def total_row(rows: Sequence[SpeedRow]) -> SpeedRow:
    """All rows together (wall = the sum of the rows' own spans, gaps excluded)."""
    walls = [r.wall_s for r in rows if math.isfinite(r.wall_s)]
    return SpeedRow("all", sum(r.episodes for r in rows), sum(r.steps for r in rows), float(sum(walls)),
                    math.nan, math.nan)


# ======================================================================== evaluations

@dataclass(frozen=True)
class EvalRun:
    """One `evaluation-<stamp>` folder and its side files."""

    stamp: str  # 14 digits, YYYYmmddHHMMSS
    simtrace: Path
    metrics: list[dict]  # EvaluationMetrics entries (one per trial)
    params: dict[str, str]  # evaluation_params.yaml when it belongs to this evaluation, else {}

    @property
    def name(self) -> str:
        return f"evaluation-{self.stamp}"

    @property
    def date(self) -> str:
        s = self.stamp
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[8:10]}:{s[10:12]}:{s[12:14]}" if len(s) == 14 else s

    @property
    def best_lap_ms(self) -> int:
        """DRoA `getBestLapTime`: the shortest elapsed time among trials at 100 %, 0 when none."""
        laps = [int(m.get("elapsed_time_in_milliseconds", 0)) for m in self.metrics
                if int(m.get("completion_percentage", 0)) == 100]
        return min(laps) if laps else 0


def find_evaluations(root: Path) -> list[EvalRun]:
    """Every evaluation of the prefix, oldest first."""
    params_file = read_params_yaml(root / "evaluation_params.yaml")
    runs = []
    for folder in sorted(root.glob("evaluation-*")):
        m = re.fullmatch(r"evaluation-(\d+)", folder.name)
        sim = folder / "evaluation-simtrace" / "0-iteration.csv"
        if not m or not sim.is_file():
            continue
        stamp = m.group(1)
        data = read_json(root / "metrics" / "evaluation" / f"evaluation-{stamp}.json") or read_json(
            root / "metrics" / f"EvaluationMetrics-{stamp}.json") or {}
        mine = stamp in params_file.get("METRICS_S3_OBJECT_KEY", "") + params_file.get("SIMTRACE_S3_PREFIX", "")
        runs.append(EvalRun(stamp, sim, list(data.get("metrics", [])) if isinstance(data, dict) else [],
                            params_file if mine else {}))
    return runs


def mm_ss_mmm(ms: float | int | None) -> str:
    """DRoA `millisToMinutesAndSeconds`: "MM:SS.mmm" (minutes wrap at an hour), "--" for 0 or missing."""
    if not ms:
        return "--"
    ms = int(ms)
    return f"{(ms // 60000) % 60:02d}:{(ms // 1000) % 60:02d}.{ms % 1000:03d}"


def penalty_text(count: int, seconds: str | None) -> str:
    """DRoA's penalty cell: "N seconds" (count × penalty) or "--" when nothing happened."""
    if not count:
        return "--"
    try:
        return f"{count * float(seconds):g} seconds" if seconds is not None else f"{count} × ? seconds"
    except ValueError:
        return f"{count} × {seconds} seconds"


EVAL_HEADERS = ("Trial", "Time (MM:SS.mmm)", "Trial results (% track completed)", "Status", "Resets",
                "Off-tracks", "Off-track penalty", "Crashes", "Crash penalty")


def evaluation_rows(run: EvalRun) -> list[tuple[str, ...]]:
    """DRoA's "Evaluation results" table of one evaluation, one tuple of cell texts per trial (EVAL_HEADERS)."""
    off_pen = run.params.get("OFF_TRACK_PENALTY")
    crash_pen = run.params.get("COLLISION_PENALTY")
    rows = []
    for m in run.metrics:
        off, crash = int(m.get("off_track_count", 0)), int(m.get("crash_count", 0))
        rows.append((str(m.get("trial", "")), mm_ss_mmm(m.get("elapsed_time_in_milliseconds")),
                     f"{m.get('completion_percentage', 0)}%", str(m.get("episode_status", "")),
                     str(m.get("reset_count", 0)), str(off), penalty_text(off, off_pen), str(crash),
                     penalty_text(crash, crash_pen)))
    return rows


# ======================================================================== the report's state between builds

@dataclass
class Section:
    """One part of the page: its anchor, title, inner HTML, the PNGs it references and its input signature."""

    id: str
    title: str
    html: str
    files: list[str] = field(default_factory=list)
    sig: str = ""
    stale: bool = False  # kept from an earlier full build by a quick refresh


def _hash(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_state(out: Path) -> dict[str, Any]:
    data = read_json(out / STATE_FILE)
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return {"version": STATE_VERSION, "sections": {}, "simtrace": {}}
    return data


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ======================================================================== HTML helpers

def clipped_table(t: dict[str, np.ndarray], live: np.ndarray, space: dict[str, Any],
                  sigma: dict[int, Any] | None = None) -> str:
    """Continuous actions: per iteration, the share of training steps whose steering / speed command sits at a
    bound of its range, i.e. a sampled action outside [-1, 1] that DeepRacer clipped (the simtrace logs the
    command), and the policy's σ per dimension after that iteration's update (drlocal's racer log, K -> σ in
    steering degrees and m/s). A share that stays high while σ stays large means the mean sits at a bound."""
    sigma = sigma or {}
    def at_bound(values: np.ndarray, rng: dict[str, Any]) -> np.ndarray:
        low, high = float(rng["low"]), float(rng["high"])
        tol = 1e-3 * max(high - low, 1e-9)
        return (np.abs(values - low) <= tol) | (np.abs(values - high) <= tol)

    steer_b = at_bound(t["steer"], space.get("steering_angle", {"low": -30, "high": 30}))
    speed_b = at_bound(t["throttle"], space.get("speed", {"low": 0.5, "high": 1}))
    iters = np.unique(t["iteration"][live])
    shown = list(iters[:3]) + [k for k in iters[-5:] if k not in iters[:3]]
    rows = []
    for k in shown:
        m = live & (t["iteration"] == k)
        sg = sigma.get(int(k))
        rows.append((int(k), int(m.sum()), f"{steer_b[m].mean():.0%}", f"{speed_b[m].mean():.0%}",
                     f"{sg[0]:.1f}°" if sg else "-", f"{sg[1]:.2f} m/s" if sg else "-"))
    text = ("Clipped samples (continuous actions): the share of training steps whose command sits at a bound of its "
            "range, i.e. PPO sampled outside it and DeepRacer clipped, and the policy's σ after the iteration's "
            "update (first and last iterations).")
    return f"<p>{esc(text)}</p>" + table(("Iteration", "Steps", "Steering at a bound", "Speed at a bound",
                                          "σ steering", "σ speed"), rows)


def esc(v: object) -> str:
    return html.escape(str(v), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    """A plain HTML table; cells are escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs) + \
        "</table>"


def note(text: str, kind: str = "info") -> str:
    return f'<div class="note {kind}">{esc(text)}</div>'


def fmt(v: Any, digits: int = 2, unit: str = "") -> str:
    """A number with `digits` decimals and its unit; "n/a" for None, NaN or anything not a number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    return f"{f:.{digits}f}{unit}" if math.isfinite(f) else "n/a"


def _as_dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


# ======================================================================== building

class _Builder:
    """Everything one build reads once, and the drawing of the sections."""

    def __init__(self, root: Path, out: Path, track: Track, stamp_eval: str | None, quick: bool,
                 eval_track: Track | None, say: Say) -> None:
        self.root, self.out, self.track, self.quick, self.say = root, out, track, quick, say
        doc = read_json(root / "metrics" / "TrainingMetrics.json")
        self.entries: list[dict] = [e for e in _as_dict(doc).get("metrics", []) if isinstance(e, dict)]
        self.metrics_sig = file_sig(root / "metrics" / "TrainingMetrics.json")
        self.hyper = _as_dict(read_json(root / "ip" / "hyperparameters.json"))
        self.metadata = _as_dict(read_json(root / "model" / "model_metadata.json"))
        self.checkpoints = _as_dict(read_json(root / "model" / "deepracer_checkpoints.json"))
        self.params = read_params_yaml(root / "training_params.yaml")
        self.reverse = self.params.get("REVERSE_DIR", "False").lower() == "true"
        self.iteration_size = cg.iteration_size_of(self.entries, self.hyper)
        self.files = simtrace_files(root)
        self.sim_sig = _hash([(k, file_sig(p)) for k, p in self.files])
        self.evals = find_evaluations(root)
        self.eval = self._pick_eval(stamp_eval)
        self.eval_track = eval_track
        self._trace: dict[str, np.ndarray] | None = None
        self.missing: list[str] = []
        self.drawn: list[str] = []

    def _pick_eval(self, stamp: str | None) -> EvalRun | None:
        if not self.evals:
            if stamp:
                raise DrlocalError(f"{self.root}: has no evaluation to show ({stamp} asked for).",
                                   hint="run `drlocal evaluate` first, or leave out the evaluation choice.")
            return None
        if stamp in (None, "", "latest"):
            return self.evals[-1]
        want = stamp.removeprefix("evaluation-")
        for r in self.evals:
            if r.stamp == want:
                return r
        raise DrlocalError(f"{self.root}: no evaluation-{want}.",
                           hint=f"choose one of {', '.join(r.name for r in self.evals)}, or latest.")

    # ----- data, loaded on first use -----

    @property
    def trace(self) -> dict[str, np.ndarray]:
        if self._trace is None:
            self._trace = load_training(self.root)
        return self._trace

    def draw(self, name: str, fig: Any) -> str:
        """Save a figure as `name` (atomically, so a browser never shows half a PNG); the <img> tag."""
        from drlocal.analysis import plots

        tmp = self.out / (name + ".tmp")
        with tmp.open("wb") as f:
            fig.savefig(f, format="png", dpi=plots.DPI, facecolor=fig.get_facecolor())
        os.replace(tmp, self.out / name)
        self.drawn.append(name)
        return f'<figure><img src="{esc(name)}" alt="{esc(name)}" loading="lazy"></figure>'

    # ----- cached per-file episode summaries (quick mode) -----

    def cached_episodes(self, state: dict[str, Any]) -> tuple[list[Episode], list[SpeedRow]]:
        """Episodes and speed rows of every training simtrace; files unchanged since the last build are not read."""
        cache = state.setdefault("simtrace", {})
        episodes: list[Episode] = []
        rows: list[SpeedRow] = []
        keep = {}
        for k, p in self.files:
            sig = file_sig(p)
            hit = cache.get(p.name)
            if not hit or hit.get("sig") != sig:
                cols = read_simtrace(p)
                cols["iteration"] = np.full(len(cols["episode"]), k, dtype=np.int64)
                hit = {"sig": sig, "episodes": [list(e) for e in episodes_of(cols)],
                       "speed": list(speed_row(f"{k}", cols).__dict__.values())}
            keep[p.name] = hit
            episodes.extend(Episode(*e) for e in hit["episodes"])
            rows.append(SpeedRow(*hit["speed"]))
        state["simtrace"] = keep
        return episodes, with_gaps(rows)

    # ----- sections -----

    def overview(self) -> Section:
        md, hp = self.metadata, self.hyper
        train = cg.phase_entries(self.entries, cg.TRAINING)
        done_t = [cg.lap_time_s(e) for e in train if cg.is_complete(e)]
        done_e = [cg.lap_time_s(e) for e in cg.phase_entries(self.entries, cg.EVALUATION) if cg.is_complete(e)]
        space = md.get("action_space")
        kind = md.get("action_space_type", "discrete" if isinstance(space, list) else "continuous")
        n_act = f"{len(space)} actions" if isinstance(space, list) else "continuous ranges"
        best, last = self.checkpoints.get("best_checkpoint") or {}, self.checkpoints.get("last_checkpoint") or {}
        pairs = [
            ("Model prefix", self.root.name),
            ("Track", f"{self.track.name} ({self.track.length:.2f} m, width {self.track.width:.2f} m"
                      f"{', reversed' if self.reverse else ''})"),
            ("Race type", self.params.get("RACE_TYPE", "?")),
            ("Sensors / network", f"{', '.join(md.get('sensor', []) or ['?'])} / {md.get('neural_network', '?')}"),
            ("Algorithm / action space", f"{md.get('training_algorithm', '?')} / {kind}, {n_act}"),
            ("Iterations (training chunks)", f"{math.ceil(len(train) / self.iteration_size)} of "
                                             f"{self.iteration_size} episodes; simtrace files {len(self.files)}"),
            ("Training episodes", f"{len(train)} ({len(done_t)} complete laps)"),
            ("Best training / evaluation lap", f"{fmt(min(done_t) if done_t else None, 3, ' s')} / "
                                               f"{fmt(min(done_e) if done_e else None, 3, ' s')}"),
            ("Best checkpoint", f"{best.get('name', '-')} (avg eval metric {fmt(best.get('avg_eval_metric'))})"),
            ("Last checkpoint", f"{last.get('name', '-')}"),
            ("Evaluations", str(len(self.evals))),
        ]
        keys = ("batch_size", "lr", "beta_entropy", "discount_factor", "num_epochs", "loss_type",
                "num_episodes_between_training", "term_cond_max_episodes")
        hyper = ", ".join(f"{k}={hp[k]}" for k in keys if k in hp)
        body = kv_table(pairs) + (f"<p class='small'>Hyperparameters: {esc(hyper)}</p>" if hyper else "")
        return Section("overview", "Overview", body)

    def reward_graph(self) -> Section:
        from drlocal.analysis import plots

        g = cg.reward_graph(self.entries, self.iteration_size)
        best_ckpt = _checkpoint_number((self.checkpoints.get("best_checkpoint") or {}).get("name"))
        img = self.draw("reward_graph.png", plots.reward_graph_figure(g, best_ckpt))
        tr = {p.x: p.y for p in g.train_reward}
        tc = {p.x: p.y for p in g.train_completion}
        er = {p.x: p.y for p in g.eval_reward}
        ec = {p.x: p.y for p in g.eval_completion}
        xs = sorted(set(tr) | set(er))[-10:]
        rows = [(f"{x:g}", fmt(tr.get(x)), fmt(er.get(x)), fmt(tc.get(x), 1), fmt(ec.get(x), 1),
                 "◀ best model" if g.best_model and g.best_model.x == x else "") for x in xs]
        tab = table(("Iteration", "Avg reward (training)", "Avg reward (evaluation)", "Avg completion % (training)",
                     "Avg completion % (evaluation)", ""), rows, "num")
        text = ("The console's reward graph, computed as DeepRacer on AWS does from metrics/TrainingMetrics.json: "
                f"training episodes in chunks of {self.iteration_size} (num_episodes_between_training), evaluation "
                "episodes grouped by the training episode they followed; the best model is the highest average "
                "evaluation reward. The simapp itself keeps the best checkpoint by evaluation progress.")
        return Section("reward-graph", "Reward graph", f"<p>{esc(text)}</p>{img}<h3>Last iterations</h3>{tab}",
                       ["reward_graph.png"])

    def metrics_panels(self) -> Section:
        from drlocal.analysis import plots

        epi = self.iteration_size
        a = self.draw("metrics_completion.png", plots.metrics_completion_figure(self.entries, epi))
        b = self.draw("metrics_laps.png", plots.metrics_laps_figure(self.entries, epi))
        tabs = []
        for phase, title in ((cg.TRAINING, "Fastest training laps"), (cg.EVALUATION, "Fastest evaluation laps")):
            laps = cg.fastest_laps(self.entries, phase)
            rows = [(cg.iteration_of(e, epi), e["episode"], e["trial"], f"{cg.lap_time_s(e):.3f}",
                     e["reward_score"]) for e in laps]
            tabs.append(f"<div><h3>{title}</h3>" + (table(("Iteration", "Episode", "Trial", "Time [s]", "Reward"),
                                                          rows, "num") if rows else note("No complete laps yet."))
                        + "</div>")
        text = ("The Metrics notebook (deepracer-analysis Metrics.ipynb) panels from TrainingMetrics.json: dots are "
                "per-iteration values, lines rolling averages.")
        body = f"<p>{esc(text)}</p>{a}{b}<div class='cols'>{''.join(tabs)}</div>"
        return Section("metrics", "Metrics notebook", body, ["metrics_completion.png", "metrics_laps.png"])

    def sanity_section(self, episodes: Sequence[Episode]) -> Section:
        from drlocal.analysis import plots

        corr = sanity.lap_time_correlation(episodes)
        warn = sanity.reward_pays_for_slow_laps(episodes)
        files = []
        if warn is not None:
            verdict = note(f"Warning: {warn}", "warn")
        elif corr is None:
            n = len(sanity.complete_laps(episodes))
            verdict = note(f"Not enough complete training laps yet to judge the reward ({n} of {sanity.MIN_LAPS} "
                           "needed).", "muted")
        elif corr.n < sanity.MIN_LAPS:
            verdict = note(f"Too few complete laps to judge yet ({corr.n} of {sanity.MIN_LAPS}): {corr.describe()}",
                           "muted")
        else:
            verdict = note(f"OK: {corr.describe()}", "ok")
        img = ""
        if corr is not None:
            laps = sanity.complete_laps(episodes)[-sanity.RECENT_LAPS:]
            img = self.draw("sanity.png", plots.sanity_figure([e.time for e in laps], [e.reward for e in laps],
                                                              corr.r, corr.slope))
            files.append("sanity.png")
        text = ("Does the reward function pay more for slower laps? Correlation of episode reward with lap time over "
                f"the last {sanity.RECENT_LAPS} complete training laps; a warning needs r ≥ {sanity.MIN_R} over at "
                f"least {sanity.MIN_LAPS} laps and one-sided 5 % significance.")
        return Section("sanity", "Reward sanity", f"<p>{esc(text)}</p>{verdict}{img}", files)

    def speed_section(self, rows: Sequence[SpeedRow], state: dict[str, Any]) -> Section:
        ev = []
        cache = state.setdefault("eval_speed", {})
        for run in self.evals:
            sig = file_sig(run.simtrace)
            hit = cache.get(run.stamp)
            if not hit or hit.get("sig") != sig:
                hit = {"sig": sig, "row": list(speed_row(run.name, read_simtrace(run.simtrace)).__dict__.values())}
            cache[run.stamp] = hit
            ev.append(SpeedRow(*hit["row"]))

        def cells(r: SpeedRow) -> tuple[str, ...]:
            return (r.label, str(r.episodes), str(r.steps), fmt(r.wall_s, 1), fmt(r.ms_per_step, 2),
                    fmt(r.steps_per_s, 0), fmt(r.rtf, 1, "×"), fmt(r.between_s, 1))

        heads = ("Iteration K", "Episodes", "Steps", "Rollout wall time [s]", "ms per step", "Steps per s",
                 "Real-time factor", "Until next iteration [s]")
        body = [cells(r) for r in rows]
        if rows:
            body.append(cells(total_row(rows)))
        body += [cells(r) for r in ev]
        text = ("Wall-clock speed from the simtrace wall_clock column: ms per step is wall time per simtrace row (all "
                "cars), the real-time factor is simulated seconds (15 steps per second, Gazebo's rate) per wall "
                "second — how much faster than one DeepRacer simulator this ran. 'Until next iteration' is the policy "
                "update plus the evaluation between two iterations.")
        html_ = f"<p>{esc(text)}</p>" + (table(heads, body, "num") if body else note("No simtrace yet."))
        return Section("speed", "Speed and stability", html_)

    def stability_table(self) -> str:
        """deepracer-utils' `SimtraceStabilityAnalyzer` (Training notebook T3), as an HTML table."""
        dru = _deepracer_utils()
        if dru is None or not self.files:
            return ""
        try:
            df = _dru_training_frame(self.root)
            res = dru.SimtraceStabilityAnalyzer(df).analyze()
        except Exception as err:  # a library failure must not stop the report
            return note(f"deepracer-utils SimtraceStabilityAnalyzer failed: {err}", "muted")
        heads = [c for c in res.columns]
        rows = [[_cell(v) for v in r] for r in res.itertuples(index=False)]
        return ("<h3>deepracer-utils stability summary (Training notebook T3, sim-time deltas)</h3>"
                + table(heads, rows, "num"))

    def training_analysis(self) -> Section:
        from drlocal.analysis import plots

        dru = _deepracer_utils()
        if dru is None:
            return Section("training", "Training analysis", note(
                "deepracer-utils is not installed: the training-progress grid, the scatter aggregates and the "
                "stability summary are left out (pip install deepracer-utils). Everything else is drlocal's own.",
                "warn"))
        if not self.files:
            return Section("training", "Training analysis", note("No training simtrace yet.", "muted"))
        try:
            df = _dru_training_frame(self.root)
            with _quiet():
                agg = dru.AnalysisUtils.simulation_agg(df, secondgroup="unique_episode")
        except Exception as err:
            return Section("training", "Training analysis", note(f"deepracer-utils could not read the trace: {err}",
                                                                 "warn"))
        text = ("From deepracer-utils AnalysisUtils.simulation_agg (one row per episode), as in the Training_analysis "
                "notebook; x = simtrace iteration K.")
        parts = [f"<p>{esc(text)}</p>",
                 self.draw("training_progress.png", plots.training_progress_figure(agg))]
        files = ["training_progress.png"]
        parts.append(self.draw("scatter_all.png", plots.scatter_aggregates_figure(agg, "Stats for all laps")))
        files.append("scatter_all.png")
        complete = agg[agg["progress"] == 100]
        if len(complete):
            parts.append(self.draw("scatter_complete.png",
                                   plots.scatter_aggregates_figure(complete, "Stats for complete laps")))
            files.append("scatter_complete.png")
        else:
            parts.append(note("No complete laps yet: the 'Stats for complete laps' grid comes with the first one.",
                              "muted"))
        if "quintile" in agg and len(agg):
            parts.append(self.draw("quintiles.png", plots.quintiles_figure(agg)))
            files.append("quintiles.png")
        parts.append(self.stability_table())
        return Section("training", "Training analysis", "".join(parts), files)

    def track_section(self, episodes: Sequence[Episode]) -> Section:
        from drlocal.analysis import plots

        t = self.trace
        if not len(t.get("episode", ())):
            return Section("track", "Track", note("No training simtrace yet.", "muted"))
        text = ("The Training_analysis notebook's track views: the reward heat map of all training steps (T19), the "
                "paths of the best episodes coloured by commanded speed (T18), the reward the best one collected per "
                "waypoint (T17) and the notebook's top-episode tables (T10–T14).")
        parts = [f"<p>{esc(text)}</p>",
                 self.draw("heatmap.png", plots.heatmap_figure(self.track, t["X"], t["Y"], t["reward"],
                                                               reverse=self.reverse))]
        best = best_laps(episodes)
        laps = []
        for e in best:
            r = rows_of(t, e.iteration, e.episode)
            laps.append(plots.Lap(f"K={e.iteration}, episode {e.episode}: {e.progress:.1f} %, {e.time:.2f} s, "
                                  f"reward {e.reward:.1f}", t["X"][r], t["Y"][r], t["throttle"][r]))
        parts.append(self.draw("best_laps.png", plots.laps_figure(
            self.track, laps, reverse=self.reverse, title="Paths of the best laps (fastest complete, else most "
                                                          "progressed)")))
        if best:
            e = best[0]
            r = rows_of(t, e.iteration, e.episode)
            parts.append(self.draw("reward_per_waypoint.png", plots.reward_per_waypoint_figure(
                t["closest_waypoint"][r], t["reward"][r], len(self.track.waypoints),
                f"Reward per waypoint: K={e.iteration}, episode {e.episode} ({e.progress:.1f} %, {e.time:.2f} s)")))
            parts.append(f"<p class='small'>Replay it: <code>drlocal replay --iteration {e.iteration} --episode "
                         f"{e.episode}</code></p>")
        parts.append(self._top_tables(episodes))
        return Section("track", "Track", "".join(parts), ["heatmap.png", "best_laps.png"]
                       + (["reward_per_waypoint.png"] if best else []))

    def _top_tables(self, episodes: Sequence[Episode]) -> str:
        heads = ("Iteration K", "Episode", "Start wp", "Steps", "Time [s]", "Progress [%]", "Reward", "Status")

        def rows(eps: Iterable[Episode]) -> list[tuple[str, ...]]:
            return [(str(e.iteration), str(e.episode), str(e.start_at), str(e.steps), f"{e.time:.3f}",
                     f"{e.progress:.1f}", f"{e.reward:.1f}", e.status) for e in eps]

        done = [e for e in episodes if e.complete]
        blocks = [("Ten best-rewarded episodes", sorted(episodes, key=lambda e: -e.reward)[:10]),
                  ("Five fastest complete laps", sorted(done, key=lambda e: e.time)[:5]),
                  ("Five most progressed episodes", sorted(episodes, key=lambda e: (-e.progress, e.time))[:5])]
        return "".join(f"<h3>{esc(t)}</h3>" + (table(heads, rows(eps), "num") if eps else note("None yet.", "muted"))
                       for t, eps in blocks)

    def action_section(self) -> Section:
        from drlocal.analysis import plots

        t = self.trace
        space = self.metadata.get("action_space")
        live = t["episode_status"] != "prepare" if len(t.get("episode", ())) else np.zeros(0, dtype=bool)
        discrete = isinstance(space, list)
        usage = None
        if discrete and live.any():
            usage = np.bincount(t["action"][live & (t["action"] >= 0)], minlength=len(space))
        text = ("The ActionSpace notebook's action index map (with the share of training steps per action), the "
                "histograms of the commanded steering and speed, and the Training_analysis notebook's action "
                "breakdown (T24) for discrete action spaces. 'prepare' rows are left out: they are no decision.")
        parts = [f"<p>{esc(text)}</p>", self.draw("action_space.png", plots.action_space_figure(space, usage))]
        files = ["action_space.png"]
        if live.any():
            parts.append(self.draw("action_histograms.png",
                                   plots.action_histograms_figure(t["steer"][live], t["throttle"][live])))
            files.append("action_histograms.png")
            if discrete and (t["action"][live] >= 0).any():
                m = live & (t["action"] >= 0)
                parts.append(self.draw("action_breakdown.png", plots.action_breakdown_figure(
                    self.track, t["X"][m], t["Y"][m], t["action"][m], t["closest_waypoint"][m],
                    [plots.action_label(a) for a in space], len(self.track.waypoints), reverse=self.reverse)))
                files.append("action_breakdown.png")
            if not discrete and isinstance(space, dict) and "iteration" in t:
                from drlocal.learn.diagnostics import RACER_LOG, read_racer_log

                sigma = {int(e["iteration"]) - 1: e.get("action_sigma")  # log iteration n = simtrace file K = n - 1
                         for e in read_racer_log(self.root / "metrics" / RACER_LOG) if "iteration" in e}
                parts.append(clipped_table(t, live, space, sigma))
        return Section("actions", "Action space", "".join(parts), files)

    def evaluation_section(self) -> Section:
        from drlocal.analysis import plots

        if self.eval is None:
            return Section("evaluation", "Evaluation", note("No evaluation yet: run `drlocal evaluate`.", "muted"))
        run = self.eval
        sel = [(("▶ " if r is run else "") + r.name, r.date, mm_ss_mmm(r.best_lap_ms),
                r.params.get("WORLD_NAME", "?"), r.params.get("RACE_TYPE", "?"), str(len(r.metrics)))
               for r in reversed(self.evals)]
        text = ("DeepRacer on AWS's evaluation tab: the evaluations of this model, the results table of the selected "
                "one (penalties from evaluation_params.yaml), then the Evaluation_analysis notebook's per-trial paths "
                "coloured by commanded speed (E7) and the fastest lap coloured by driven speed (E8).")
        parts = [f"<p>{esc(text)}</p>",
                 table(("Name", "Evaluation date", "Best lap time", "Track", "Race type", "Trials"), sel),
                 f"<h3>Evaluation results: {esc(run.name)}</h3>"]
        p = run.params
        if p:
            conf = (f"Race type {p.get('RACE_TYPE', '?')}, track {p.get('WORLD_NAME', '?')}"
                    f"{' (reversed)' if p.get('REVERSE_DIR', 'False').lower() == 'true' else ''}, "
                    f"{p.get('NUMBER_OF_TRIALS', '?')} trials, {p.get('NUMBER_OF_RESETS', '?')} resets allowed, "
                    f"off-track penalty {p.get('OFF_TRACK_PENALTY', '?')} s, collision penalty "
                    f"{p.get('COLLISION_PENALTY', '?')} s, continuous {p.get('IS_CONTINUOUS', '?')}.")
            parts.append(f"<p class='small'>{esc(conf)}</p>")
        rows = evaluation_rows(run)
        parts.append(table(EVAL_HEADERS, rows, "num eval") if rows else note(
            "No evaluation metrics file for this evaluation.", "muted"))
        track = self._eval_track(run)
        cols = read_simtrace(run.simtrace)
        cols["iteration"] = np.zeros(len(cols["episode"]), dtype=np.int64)
        eps = episodes_of(cols)
        laps = []
        for e in eps:
            r = rows_of(cols, None, e.episode)
            v = e.dist / e.time if e.time > 0 else math.nan
            laps.append(plots.Lap(f"Trial {e.episode + 1}: {e.progress:.1f} %, {e.time:.2f} s, {e.dist:.2f} m\n"
                                  f"avg speed {e.speed:.2f} m/s (commanded), {v:.2f} m/s (driven)",
                                  cols["X"][r], cols["Y"][r], cols["throttle"][r]))
        files = []
        if laps:
            parts.append(self.draw("eval_trials.png", plots.laps_figure(track, laps, title=f"{run.name}: trials")))
            files.append("eval_trials.png")
            fast = best_laps(eps, 1)[0]
            r = rows_of(cols, None, fast.episode)
            parts.append(self.draw("eval_fastest.png", plots.laps_figure(
                track, [plots.Lap(f"Trial {fast.episode + 1}: {fast.progress:.1f} %, {fast.time:.2f} s",
                                  cols["X"][r], cols["Y"][r], measured_speed(cols, r))],
                label="driven speed [m/s]", cmap="viridis", robust=True,
                title="Fastest lap" if fast.complete else "Most progressed trial (no complete lap)")))
            files.append("eval_fastest.png")
        parts.append(self._videos(run))
        return Section("evaluation", "Evaluation", "".join(parts), files)

    def _eval_track(self, run: EvalRun) -> Track:
        if self.eval_track is not None:
            return self.eval_track
        world = run.params.get("WORLD_NAME")
        if world and world != self.track.name:
            from drlocal.tracks import load_track

            with contextlib.suppress(DrlocalError):
                return load_track(world)
        return self.track

    def _videos(self, run: EvalRun) -> str:
        found = [(c, self.root / "mp4" / c / "0-video.mp4") for c in CAMERAS]
        found = [(c, p) for c, p in found if p.is_file()]
        if not found:
            return note("No evaluation video: evaluate with DR_EVAL_SAVE_MP4=True (or `drlocal evaluate --mp4`) to "
                        "record the three cameras.", "muted")
        latest = run is self.evals[-1]
        out = ["<h3>Evaluation videos" + ("" if latest else " (recorded by the latest evaluation)") + "</h3>",
               "<div class='videos'>"]
        for cam, p in found:
            rel = os.path.relpath(p, self.out).replace(os.sep, "/")
            out.append(f"<figure><video controls preload='metadata' src='{esc(rel)}'></video>"
                       f"<figcaption>{esc(CAMERA_TITLES[cam])}</figcaption></figure>")
        return "".join(out) + "</div>"


MOVING = ("in_progress", "lap_complete")


def measured_speed(cols: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Driven speed [m/s] of the rows of one episode: distance from the previous row over the sim-time step.
    NaN at the first row, wherever no sim time passed, and across a reset (a row that is not driving, or one
    that follows an off-track / crash / pause row, when the car is lifted back onto the track)."""
    x, y, t = cols["X"][rows], cols["Y"][rows], cols["tstamp"][rows]
    st = cols["episode_status"][rows]
    driving = np.isin(st, MOVING)
    ok = driving[1:] & (driving[:-1] | (st[:-1] == "prepare"))
    d = np.hypot(np.diff(x), np.diff(y))
    dt = np.diff(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(ok & (dt > 0), d / np.where(dt > 0, dt, 1.0), np.nan)
    return np.concatenate([[np.nan], v])


def _checkpoint_number(name: Any) -> int | None:
    m = re.match(r"(\d+)_Step", str(name or ""))
    return int(m.group(1)) if m else None


def _cell(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "n/a" if not math.isfinite(float(v)) else f"{float(v):.3g}" if abs(float(v)) < 1e4 else f"{v:.0f}"
    return "n/a" if str(v) in ("<NA>", "nan", "None", "NaN") else str(v)


@contextlib.contextmanager
def _quiet() -> Any:
    """deepracer-utils prints progress and pandas warns: keep both out of the terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _deepracer_utils() -> Any:
    """deepracer.logs when deepracer-utils (and pandas) is installed, else None."""
    try:
        with _quiet():
            from deepracer import logs
    except Exception:  # ImportError, or a broken optional install
        return None
    return logs


def _has_deepracer_utils() -> bool:
    """Whether deepracer-utils and pandas are installed, without importing them (that takes a second)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("deepracer", "pandas"))


_DRU_FRAMES: dict[str, tuple[str, Any]] = {}


def _dru_training_frame(root: Path) -> Any:
    """The training trace as deepracer-utils loads it (`DeepRacerLog(...).load_training_trace()`), read once per
    set of simtrace files (a copy: `simulation_agg` adds columns to the frame it gets)."""
    from deepracer.logs import DeepRacerLog

    sig = _hash([(k, file_sig(p)) for k, p in simtrace_files(root)])
    hit = _DRU_FRAMES.get(str(root))
    if hit is None or hit[0] != sig:
        with _quiet():
            log = DeepRacerLog(model_folder=str(root))
            log.load_training_trace(ignore_metadata=True)
        _DRU_FRAMES.clear()
        _DRU_FRAMES[str(root)] = hit = (sig, log.dataframe())
    return hit[1].copy()


# ======================================================================== the page

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2733}
header{background:#232f3e;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .sub{color:#c5ced8;font-size:13px;margin-top:4px}
nav{background:#fff;border-bottom:1px solid #d5dbe1;padding:8px 24px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#0972d3;text-decoration:none;font-size:14px}
main{max-width:1320px;margin:0 auto;padding:12px 24px 40px}
section{background:#fff;border:1px solid #d5dbe1;border-radius:8px;padding:8px 20px 16px;margin:16px 0}
section h2{font-size:18px;margin:10px 0}h3{font-size:15px;margin:16px 0 6px}
figure{margin:8px 0}img{max-width:100%;height:auto;border:1px solid #eef0f2}
video{width:100%;max-width:640px;background:#000}
.videos{display:flex;flex-wrap:wrap;gap:12px}.videos figure{flex:1 1 400px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border-bottom:1px solid #e3e7eb;padding:4px 10px;
text-align:left}thead th{background:#f2f4f6}table.num td{font-variant-numeric:tabular-nums}
table.kv th{background:#f7f8f9;width:240px}
.note{padding:8px 12px;border-radius:6px;margin:8px 0;font-size:14px}.note.info{background:#eaf3fd}
.note.ok{background:#e8f5e9;border-left:4px solid #2e7d32}.note.warn{background:#fff4e5;border-left:4px solid #ef6c00}
.note.muted{background:#f2f4f6;color:#555}.small{font-size:12px;color:#555}.stale{font-size:12px;color:#8a6d00}
.cols{display:flex;flex-wrap:wrap;gap:24px}code{background:#f2f4f6;padding:1px 4px;border-radius:3px}
"""


def _page(b: _Builder, sections: Sequence[Section], elapsed: float) -> str:
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
    # pages `drlocal analyze --policy-map` / `--compare` wrote into the same folder
    nav += "".join(f'<a href="{name}">{label}</a>' for name, label in
                   (("policy-map.html", "Policy map"), ("policy-map-compare.html", "Policy map: compare"))
                   if (b.out / name).is_file())
    body = []
    for s in sections:
        stale = ("<p class='stale'>From the last full build; the per-iteration refresh leaves this section as it "
                 "was (run <code>drlocal analyze</code> to redraw it).</p>") if s.stale else ""
        body.append(f'<section id="{s.id}"><h2>{esc(s.title)}</h2>{stale}{s.html}</section>')
    missing = note("Missing panels: " + "; ".join(b.missing), "warn") if b.missing else ""
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    mode = "quick refresh" if b.quick else "full build"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>drlocal report: {esc(b.root.name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(b.root.name)} — drlocal report</h1><div class='sub'>{esc(b.root)} · track "
            f"{esc(b.track.name)} · {esc(when)} ({mode}, {elapsed:.2f} s)</div></header><nav>{nav}</nav><main>"
            f"{missing}{''.join(body)}<p class='small'>Written by <code>drlocal analyze</code>. Console graphs count "
            f"iterations from 1 (iteration n produced checkpoint n); simtrace panels use the file number K = n − 1."
            f"</p></main></body></html>")


def build_report(model_root: Path, out_dir: Path, *, track: Track, stamp_eval: str | None = None,
                 quick: bool = False, eval_track: Track | None = None, say: Say | None = None) -> Path:
    """Write the report of the model folder `model_root` (`<bucket>/<prefix>/`) into `out_dir`; returns index.html.

    track: the training track (the `WORLD_NAME` of training_params.yaml); eval_track: the evaluation's, when it
    differs (default: the evaluation_params.yaml world, else `track`). stamp_eval: the evaluation to detail
    (`YYYYmmddHHMMSS`, `evaluation-<stamp>` or "latest"; default the newest). quick: the per-iteration refresh —
    redraw only the panels fed by TrainingMetrics.json and the speed / sanity tables, keep the other sections of
    the last full build. say: gets one line per finding worth printing — the reward-sanity warning, on every build
    while it holds. Raises DrlocalError for a missing model folder, an unwritable `out_dir` or an unknown
    evaluation stamp; side files that are missing or unreadable only leave their panels out."""
    t0 = time.perf_counter()
    root, out = Path(model_root), Path(out_dir)
    if not root.is_dir():
        raise DrlocalError(f"{root}: no such model folder.", hint="give the folder of a model prefix "
                                                                  "(<bucket>/<prefix>/), e.g. data/bucket/"
                                                                  "rl-deepracer-sagemaker.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DrlocalError(f"cannot create the report folder {out}: {err.strerror or err}.",
                           hint="choose another output folder, one you can write.") from None
    b = _Builder(root, out, track, stamp_eval, quick, eval_track, say or (lambda _m: None))
    state = _load_state(out)
    episodes, speed = b.cached_episodes(state)
    stored = state.setdefault("sections", {})

    def cheap(sec_id: str, sig: str, make: Callable[[], Section]) -> Section:
        old = stored.get(sec_id)
        if old and old.get("sig") == sig and all((out / f).is_file() for f in old.get("files", [])):
            return Section(sec_id, old["title"], old["html"], old.get("files", []), sig)
        s = make()
        s.sig = sig
        return s

    def heavy(sec_id: str, title: str, sig: str, make: Callable[[], Section]) -> Section:
        old = stored.get(sec_id)
        fresh = old and old.get("sig") == sig and all((out / f).is_file() for f in old.get("files", []))
        if old and (fresh or quick):
            return Section(sec_id, old["title"], old["html"], old.get("files", []), old["sig"], stale=not fresh)
        if quick:
            return Section(sec_id, title, note("Drawn by a full build (`drlocal analyze`); the per-iteration refresh "
                                               "only draws the graphs above.", "muted"), stale=False)
        s = make()
        s.sig = sig
        return s

    dru = _has_deepracer_utils()
    if not dru:
        b.missing.append("the training-progress grid, the scatter aggregates and the stability summary "
                         "(they need deepracer-utils: pip install deepracer-utils)")
    meta_sig = _hash(file_sig(root / "model" / "model_metadata.json"), track.name, b.reverse)
    ev_sig = _hash(b.eval.stamp if b.eval else None, [(r.stamp, file_sig(r.simtrace)) for r in b.evals],
                   [file_sig(root / "mp4" / c / "0-video.mp4") for c in CAMERAS])
    sections = [
        b.overview(),
        cheap("reward-graph", _hash(b.metrics_sig, b.iteration_size, b.checkpoints), b.reward_graph),
        cheap("metrics", _hash(b.metrics_sig, b.iteration_size), b.metrics_panels),
        cheap("sanity", _hash(b.sim_sig), lambda: b.sanity_section(episodes)),
        b.speed_section(speed, state),
        heavy("training", "Training analysis", _hash(b.sim_sig, dru), b.training_analysis),
        heavy("track", "Track", _hash(b.sim_sig, meta_sig), lambda: b.track_section(episodes)),
        heavy("actions", "Action space", _hash(b.sim_sig, meta_sig), b.action_section),
        heavy("evaluation", "Evaluation", ev_sig, b.evaluation_section),
    ]
    warn = sanity.reward_pays_for_slow_laps(episodes)
    if warn is not None:
        b.say(f"reward sanity: {warn}")
    state["sections"] = {s.id: {"title": s.title, "html": s.html, "files": s.files, "sig": s.sig}
                         for s in sections if s.sig and not s.stale}
    for s in sections:  # keep the last full build's sections a quick refresh reused
        if s.stale and s.id in stored:
            state["sections"][s.id] = stored[s.id]
    index = out / "index.html"
    _atomic_write(index, _page(b, sections, time.perf_counter() - t0))
    _atomic_write(out / STATE_FILE, json.dumps(state))
    return index


def training_episodes(model_root: Path) -> list[Episode]:
    """Every training episode of a model folder (for a caller that wants the sanity check without a report)."""
    return episodes_of(load_training(Path(model_root)))
