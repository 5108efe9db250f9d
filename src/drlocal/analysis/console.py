"""The console's reward graph and the Metrics notebook's per-iteration numbers, from `TrainingMetrics.json` entries.

Two families of numbers, each computed exactly as the tool users compare drlocal with:

* **DeepRacer on AWS (DRoA) reward graph** (`RewardGraph.tsx` + `utils.ts` of the model-details page, the console's
  successor): training entries cut *in file order* into chunks of `num_episodes_between_training`; chunk i (from 0)
  is plotted at x = i + 1 with the mean `reward_score` and mean `completion_percentage`; a short last chunk counts.
  Evaluation entries are grouped by their `episode` value (which repeats the last training episode of the
  iteration), plotted at x = episode / iteration size in ascending episode order. The "Best model" marker is the x
  of the highest mean evaluation reward (mean evaluation completion when there is no reward series); on ties the
  later point wins (`reduce((p, c) => p.y > c.y ? p : c)`).
* **deepracer-utils `TrainingMetrics`** (the Metrics notebook): iteration = floor((episode − 1) / E) where the
  library takes E = max(trial); `complete` = status "Lap complete"; `time` = elapsed ms / 1000; per-iteration
  summaries with a method (mean, median, min, max) and `rolling(window, min_periods=1)` lines. These are
  re-implemented here without pandas because the per-iteration refresh must stay well under a second and pandas is
  not a drlocal dependency; `tests/test_report.py` checks them against the library itself.

Iterations are numbered from 1 everywhere in this module (iteration n produced checkpoint n), as on the console;
the Metrics notebook shows the same numbers minus one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

TRAINING = "training"
EVALUATION = "evaluation"
LAP_COMPLETE = "Lap complete"

Entry = Mapping[str, Any]  # one element of TrainingMetrics.json "metrics"


class Point(NamedTuple):
    """One point of a console series: x = iteration (1-based, may be fractional for evaluations), y = the mean."""

    x: float
    y: float


@dataclass(frozen=True)
class RewardGraph:
    """The four series and the marker of DRoA's "Reward graph" (y: reward for the first two, percent for the rest)."""

    iteration_size: int
    train_reward: list[Point] = field(default_factory=list)
    eval_reward: list[Point] = field(default_factory=list)
    train_completion: list[Point] = field(default_factory=list)  # [%]
    eval_completion: list[Point] = field(default_factory=list)  # [%]
    best_model: Point | None = None  # the "Best model" threshold: x, and the y that won

    @property
    def iterations(self) -> int:
        """Number of training chunks (iterations) plotted."""
        return len(self.train_reward)


def phase_entries(entries: Iterable[Entry], phase: str) -> list[Entry]:
    """The entries of one phase ("training" or "evaluation"), in file order."""
    return [e for e in entries if e.get("phase") == phase]


def iteration_size_of(entries: Sequence[Entry], hyperparameters: Mapping[str, Any] | None = None) -> int:
    """Episodes per iteration: `num_episodes_between_training` (what DRoA uses), else the largest training trial."""
    if hyperparameters:
        n = hyperparameters.get("num_episodes_between_training")
        if isinstance(n, int | float) and n >= 1:
            return int(n)
    trials = [int(e.get("trial", 0)) for e in phase_entries(entries, TRAINING)]
    return max([*trials, 1])


def training_series(entries: Sequence[Entry], iteration_size: int) -> tuple[list[Point], list[Point]]:
    """DRoA `getTrainingSeries`: (average reward, average completion [%]) per chunk of `iteration_size` entries."""
    train = phase_entries(entries, TRAINING)
    size = max(int(iteration_size), 1)
    reward, completion = [], []
    for i in range(0, len(train), size):
        batch = train[i:i + size]
        x = (i + size) / size
        reward.append(Point(x, sum(float(e["reward_score"]) for e in batch) / len(batch)))
        completion.append(Point(x, sum(float(e["completion_percentage"]) for e in batch) / len(batch)))
    return reward, completion


def evaluation_series(entries: Sequence[Entry], iteration_size: int) -> tuple[list[Point], list[Point]]:
    """DRoA `getEvaluationSeries`: (average reward, average completion [%]) per distinct `episode` value.

    x = episode / iteration_size: the iteration the evaluation followed (evaluation entries repeat the last
    training episode number). Groups come in ascending episode order, as JavaScript orders integer keys."""
    groups: dict[int, list[Entry]] = {}
    for e in phase_entries(entries, EVALUATION):
        groups.setdefault(int(e["episode"]), []).append(e)
    size = max(int(iteration_size), 1)
    reward, completion = [], []
    for episode in sorted(groups):
        g = groups[episode]
        reward.append(Point(episode / size, sum(float(e["reward_score"]) for e in g) / len(g)))
        completion.append(Point(episode / size, sum(float(e["completion_percentage"]) for e in g) / len(g)))
    return reward, completion


def best_model_point(eval_reward: Sequence[Point], eval_completion: Sequence[Point]) -> Point | None:
    """DRoA `getBestModelPoint`: the highest evaluation reward point (ties: the later one), else the highest
    evaluation completion point, else None."""
    for series in (eval_reward, eval_completion):
        if series:
            best = series[0]
            for p in series[1:]:
                best = best if best.y > p.y else p
            return best
    return None


def reward_graph(entries: Sequence[Entry], iteration_size: int) -> RewardGraph:
    """Every number of DRoA's reward graph for these TrainingMetrics entries."""
    tr, tc = training_series(entries, iteration_size)
    er, ec = evaluation_series(entries, iteration_size)
    return RewardGraph(iteration_size=max(int(iteration_size), 1), train_reward=tr, eval_reward=er,
                       train_completion=tc, eval_completion=ec, best_model=best_model_point(er, ec))


# ----- the Metrics notebook (deepracer-utils TrainingMetrics) -----

METHODS = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}


def notebook_iteration_size(entries: Sequence[Entry]) -> int:
    """What deepracer-utils infers as episodes per iteration: max(trial) over all entries (both phases)."""
    return max([int(e.get("trial", 0)) for e in entries] + [1])


def iteration_of(entry: Entry, episodes_per_iteration: int) -> int:
    """1-based iteration of an entry: floor((episode − 1) / E) + 1 (deepracer-utils' 0-based value plus one)."""
    return (int(entry["episode"]) - 1) // max(int(episodes_per_iteration), 1) + 1


def is_complete(entry: Entry) -> bool:
    """A full lap, by the label the console writes ("Lap complete")."""
    return entry.get("episode_status") == LAP_COMPLETE


def lap_time_s(entry: Entry) -> float:
    """Episode duration [s] (`elapsed_time_in_milliseconds` / 1000, penalties included for evaluations)."""
    return float(entry["elapsed_time_in_milliseconds"]) / 1000.0


@dataclass(frozen=True)
class IterationSummary:
    """deepracer-utils `getSummary` for one phase: per iteration (1-based, ascending), the method applied to reward,
    completion [%], time [s] and complete (0/1, so the mean is the fraction of full laps), and the episode count."""

    iteration: np.ndarray  # (K,) int
    reward: np.ndarray  # (K,)
    completion: np.ndarray  # (K,) [%]
    time: np.ndarray  # (K,) [s]
    completed: np.ndarray  # (K,) method of 0/1
    episodes: np.ndarray  # (K,) int


def summarize(entries: Sequence[Entry], phase: str, method: str = "mean", *, episodes_per_iteration: int,
              completed_laps_only: bool = False) -> IterationSummary:
    """Per-iteration summary of one phase, as `TrainingMetrics.getSummary(method=...)` computes it."""
    fn = METHODS[method]
    groups: dict[int, list[Entry]] = {}
    for e in phase_entries(entries, phase):
        if completed_laps_only and not is_complete(e):
            continue
        groups.setdefault(iteration_of(e, episodes_per_iteration), []).append(e)
    its = sorted(groups)

    def col(f: Any) -> np.ndarray:
        return np.array([float(fn(np.array([f(e) for e in groups[i]], dtype=float))) for i in its], dtype=float)

    return IterationSummary(
        iteration=np.array(its, dtype=int),
        reward=col(lambda e: float(e["reward_score"])),
        completion=col(lambda e: float(e["completion_percentage"])),
        time=col(lap_time_s),
        completed=col(lambda e: 1.0 if is_complete(e) else 0.0),
        episodes=np.array([len(groups[i]) for i in its], dtype=int),
    )


def align(summary: IterationSummary, values: np.ndarray, iterations: np.ndarray) -> np.ndarray:
    """`values` of `summary` placed on `iterations` (K,), NaN where the summary has no such iteration
    (the NaN rows that pandas' concat of the training and evaluation summaries leaves)."""
    out = np.full(len(iterations), np.nan)
    pos = {int(i): k for k, i in enumerate(summary.iteration)}
    for j, it in enumerate(iterations):
        if int(it) in pos:
            out[j] = values[pos[int(it)]]
    return out


def rolling(values: Sequence[float] | np.ndarray, window: int, method: str = "mean") -> np.ndarray:
    """pandas `Series.rolling(window, min_periods=1).agg(method)`: the method over the last `window` values,
    NaN values skipped, NaN where the window holds no number at all."""
    v = np.asarray(values, dtype=float)
    fn = METHODS[method]
    out = np.full(v.shape, np.nan)
    for i in range(len(v)):
        w = v[max(0, i - int(window) + 1):i + 1]
        w = w[np.isfinite(w)]
        if w.size:
            out[i] = float(fn(w))
    return out


def complete_laps(entries: Sequence[Entry], phase: str, episodes_per_iteration: int) -> list[tuple[int, float]]:
    """(iteration, lap time [s]) of every complete lap of a phase: the Metrics notebook's "Best lap progression"."""
    return [(iteration_of(e, episodes_per_iteration), lap_time_s(e))
            for e in phase_entries(entries, phase) if is_complete(e)]


def fastest_laps(entries: Sequence[Entry], phase: str, n: int = 5) -> list[Entry]:
    """The `n` fastest complete laps of a phase (the notebook's `complete_lr.nsmallest(5, ['time'])`)."""
    laps = [e for e in phase_entries(entries, phase) if is_complete(e)]
    return sorted(laps, key=lap_time_s)[:n]
