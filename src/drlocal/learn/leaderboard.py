"""Offline races: several models evaluated under identical conditions, ranked as a time-trial leaderboard.

`drlocal race` and `drlocal sweep` use it. Every model drives the same continuous evaluation (DeepRacer's
"N laps with resets" format of the 2020+ virtual races): the same track and direction, the same start line,
the same race objects (seeded 0 as the simapp seeds evaluation), DR_EVAL_MAX_RESETS and the off-track /
collision penalties of the working folder. Each model's evaluation files are written into its own prefix
as `drlocal evaluate` writes them, so the DeepRacer tools read them too.

Ranking (as the console's time-trial leaderboards): more completed laps first, then the lower average lap
time (penalties included), then more progress. Written by hand: the ranking and the table are
DeepRacer-specific.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drlocal.errors import DrlocalError

if TYPE_CHECKING:
    from drlocal.config.workdir import Job

COLUMNS = ("rank", "model", "checkpoint", "laps", "clean_laps", "avg_lap_s", "best_lap_s", "total_s",
           "progress_pct", "off_track", "crashes", "resets", "error")


@dataclass
class Entry:
    """One model's result in a race (times in seconds, penalties included)."""

    model: str
    checkpoint: str = "-"
    laps: int = 0  # completed laps
    trials: int = 0  # laps asked for
    clean_laps: int = 0  # completed without a reset
    avg_lap_s: float = math.nan
    best_lap_s: float = math.nan
    total_s: float = math.nan  # all trials' elapsed time
    progress_pct: float = 0.0  # mean completion over the trials
    off_track: int = 0
    crashes: int = 0
    resets: int = 0
    error: str = ""  # why the model could not race
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a sweep variant's settings

    def to_json(self) -> dict[str, Any]:
        """A plain dict for JSON files: non-finite times become null (strict JSON has no NaN)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """Back from `to_json` (null times become NaN)."""
        floats = ("avg_lap_s", "best_lap_s", "total_s")
        return cls(**{k: (math.nan if k in floats and v is None else v) for k, v in data.items()})

    def sort_key(self) -> tuple[float, float, float]:
        avg = self.avg_lap_s if self.laps else math.inf
        return (-self.laps, avg, -self.progress_pct)

    @classmethod
    def from_laps(cls, model: str, checkpoint: str, laps: list[Any], extra: dict[str, Any] | None = None,
                  trials: int | None = None) -> Entry:
        """From `drlocal.learn.evaluate.LapResult`s; `trials`: the laps asked for (a race that ran out of resets
        has fewer entries), progress averaged over them."""
        trials = max(trials or 0, len(laps))
        done = [lap for lap in laps if lap.status == "lap_complete"]
        times = [lap.elapsed_ms / 1000.0 for lap in done]
        return cls(
            model=model, checkpoint=str(checkpoint), laps=len(done), trials=trials,
            clean_laps=sum(1 for lap in done if lap.resets == 0),
            avg_lap_s=sum(times) / len(times) if times else math.nan,
            best_lap_s=min(times) if times else math.nan,
            total_s=sum(lap.elapsed_ms for lap in laps) / 1000.0,
            progress_pct=sum(min(lap.completion, 100.0) for lap in laps) / max(trials, 1),
            off_track=sum(lap.off_track for lap in laps), crashes=sum(lap.crashes for lap in laps),
            resets=sum(lap.resets for lap in laps), extra=dict(extra or {}),
        )


@dataclass
class Leaderboard:
    """A ranked race: where, how many laps, and the entries best first."""

    track: str
    laps: int
    entries: list[Entry]
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def ranked(self) -> list[Entry]:
        return sorted(self.entries, key=lambda e: (bool(e.error), *e.sort_key()))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per entry, best first, with the COLUMNS and each entry's extra keys."""
        out = []
        for k, e in enumerate(self.ranked(), 1):
            row = {"rank": k if not e.error else "-", "model": e.model, "checkpoint": e.checkpoint,
                   "laps": f"{e.laps}/{e.trials or self.laps}", "clean_laps": e.clean_laps,
                   "avg_lap_s": _num(e.avg_lap_s), "best_lap_s": _num(e.best_lap_s), "total_s": _num(e.total_s),
                   "progress_pct": round(e.progress_pct, 1), "off_track": e.off_track, "crashes": e.crashes,
                   "resets": e.resets, "error": e.error}
            row.update(e.extra)
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"track": self.track, "laps": self.laps, "started": self.started,
                "entries": [e.to_json() | {"rank": r["rank"]} for e, r in zip(self.ranked(), self.rows(), strict=True)]}

    def to_csv(self) -> str:
        rows = self.rows()
        keys = list(COLUMNS) + sorted({k for r in rows for k in r} - set(COLUMNS))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def write(self, stem: Path) -> tuple[Path, Path]:
        """`<stem>.json` and `<stem>.csv`, each written atomically."""
        from drlocal.store.local import atomic_write_json, atomic_write_text

        stem.parent.mkdir(parents=True, exist_ok=True)
        j, c = stem.parent / f"{stem.name}.json", stem.parent / f"{stem.name}.csv"
        atomic_write_json(j, json.loads(json.dumps(self.to_json(), default=str)))
        atomic_write_text(c, self.to_csv())
        return j, c


def _num(x: float) -> float | str:
    return round(x, 3) if math.isfinite(x) else "-"


def parse_model(text: str, default_checkpoint: str) -> tuple[str, str]:
    """`PREFIX` or `PREFIX:CHECKPOINT` (best, last or a number) -> (prefix, checkpoint)."""
    prefix, _, which = text.strip().partition(":")
    prefix = prefix.strip().strip("/")
    if not prefix:
        raise DrlocalError(f"model {text!r}: no model prefix.", hint="give PREFIX or PREFIX:CHECKPOINT "
                           "(e.g. my-model or my-model:best or my-model:12).")
    return prefix, (which.strip() or default_checkpoint)


def local_models(job: Job, limit: int = 12) -> list[str]:
    """Prefixes in the bucket's local folder (or working copy) that hold a model/ folder, for hints."""
    from drlocal.store.layout import prefixes_holding
    from drlocal.store.select import store_of

    try:
        root = store_of(job).local_root
    except DrlocalError:
        return []
    return prefixes_holding(root, lambda p: (p / "model").is_dir(), limit)


def race_models(job: Job, models: list[tuple[str, str]], *, track: str | None = None, laps: int = 3,
                say: Any = None, extras: list[dict[str, Any]] | None = None) -> Leaderboard:
    """Evaluate every (prefix, checkpoint) of `models` in the job's bucket with the same settings.

    A model that cannot race (no such prefix, no checkpoint, an unreadable file) gets its error in the
    leaderboard instead of stopping the others. `say(msg)` hears one line per model as it finishes."""
    from drlocal.learn.evaluate import evaluate
    from drlocal.tracks import load_track

    world = track or job.run.world_name
    load_track(world)  # an unknown track is one error before any model runs
    entries = []
    for k, (prefix, which) in enumerate(models):
        extra = extras[k] if extras else {}
        try:
            res = evaluate(job, checkpoint=which, trials=laps, continuous=True, world=world, prefix=prefix,
                           opponent=None, mp4=False)
            entry = Entry.from_laps(prefix, res.checkpoint, res.laps, extra, trials=laps)
        except DrlocalError as err:
            entry = Entry(model=prefix, checkpoint=which, trials=laps, error=error_line(err), extra=extra)
        entries.append(entry)
        if say is not None:
            say(describe(entry))
    return Leaderboard(world, laps, entries)


def describe(e: Entry) -> str:
    """One line for a progress log."""
    if e.error:
        return f"{e.model}: cannot race: {e.error}"
    avg = f"{e.avg_lap_s:.2f} s" if e.laps else "-"
    return (f"{e.model} ({e.checkpoint}): {e.laps}/{e.trials} laps, average {avg}, "
            f"progress {e.progress_pct:.0f}%, resets {e.resets}")


def error_line(err: DrlocalError) -> str:
    """A DrlocalError as one line: its first line and, in brackets, its hint (for tables and result files)."""
    text = Exception.__str__(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{text} ({err.hint})" if getattr(err, "hint", None) else text
