"""`drlocal race` (an offline race of several models) and `drlocal sweep` (registered on the main app)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from drlocal.cli_options import CfgOpt, DirOpt, ExpOpt
from drlocal.errors import DrlocalError

SHOWN = ("rank", "model", "checkpoint", "laps", "clean_laps", "avg_lap_s", "best_lap_s", "total_s", "progress_pct",
         "resets")
HEADERS = {"clean_laps": "clean", "avg_lap_s": "avg s", "best_lap_s": "best s", "total_s": "total s",
           "progress_pct": "progress %", "checkpoint": "ckpt", "trained_min": "min", "iterations": "iters"}


def leaderboard_table(board: Any, title: str, extra_columns: list[str] | None = None,
                      hide: tuple[str, ...] = ()) -> Table:
    """The leaderboard as a rich table (the sweep adds its variant settings as columns)."""
    table = Table(title=title)
    cols = [c for c in SHOWN if c not in hide] + list(extra_columns or [])
    for c in cols:
        table.add_column(HEADERS.get(c, c.removeprefix("hyperparameters.").removeprefix("model_metadata.")),
                         justify="right" if c in SHOWN and c not in ("model", "checkpoint") else "left")
    for row in board.rows():
        table.add_row(*(str(row.get(c, "")).removesuffix(".ckpt") for c in cols))
    return table


def register(app: typer.Typer, console: Console, load: Any) -> None:
    """Add `drlocal race` and `drlocal sweep` to `app`; `load(directory, experiment, config)` returns the Job."""

    @app.command()
    def race(
        models: Annotated[list[str], typer.Argument(help="Model prefixes in the folder's bucket, each optionally "
                                                    "with :CHECKPOINT (best, last or a number; default --checkpoint).",
                                                    show_default=False)],
        directory: DirOpt = Path("."),
        track: Annotated[str | None, typer.Option("--track", "-t", help="World name or .npy route (default "
                                                  "DR_WORLD_NAME).")] = None,
        laps: Annotated[int, typer.Option(help="Laps of the continuous race (with DR_EVAL_MAX_RESETS resets and "
                                          "the DR_EVAL_* penalties).")] = 3,
        checkpoint: Annotated[str, typer.Option(help="Checkpoint of models given without :CHECKPOINT.")] = "best",
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Leaderboard files <out>.json and <out>.csv "
                                                 "(default races/race-<time>).")] = None,
        experiment: ExpOpt = None,
        config: CfgOpt = None,
    ) -> None:
        """Race several models under identical conditions and print (and write) the leaderboard."""
        from drlocal.learn.leaderboard import local_models, parse_model, race_models

        if not 1 <= laps <= 1000:
            raise DrlocalError(f"--laps {laps} is out of range.", hint="use 1 to 1000 laps.")
        entries = [parse_model(m, checkpoint) for m in models]
        seen = [p for p, _ in entries]
        dupes = sorted({f"{p}:{c}" for p, c in entries if entries.count((p, c)) > 1})
        if dupes:
            raise DrlocalError(f"model given twice: {', '.join(dupes)}.", hint="name each model once.")
        job = load(directory, experiment, config)
        where = track or job.run.world_name
        console.print(f"racing {len(seen)} models on {where}: {laps} laps each, continuous, up to "
                      f"{job.run.eval_max_resets} resets, off-track penalty {job.run.eval_off_track_penalty:g} s",
                      highlight=False)
        board = race_models(job, entries, track=track, laps=laps, say=lambda m: console.print(m, highlight=False))
        stem = out if out is not None else job.root / "races" / f"race-{time.strftime('%Y%m%d%H%M%S')}"
        j, c = board.write(stem.with_suffix("") if stem.suffix in (".json", ".csv") else stem)
        console.print(leaderboard_table(board, f"race on {board.track}, {laps} laps"))
        console.print(f"leaderboard: {c} (and {j.name})", highlight=False)
        if all(e.error for e in board.entries):
            have = local_models(job)
            raise DrlocalError("no model could race.", hint="give model prefixes of this folder's bucket"
                               + (f" ({', '.join(have)})." if have else "; it holds no model yet."))

    @app.command()
    def sweep(
        spec: Annotated[Path, typer.Argument(help="The sweep spec (YAML).", show_default=False)],
        restart: Annotated[bool, typer.Option("--restart", help="Train every variant again (default: keep the "
                                              "finished ones, continue interrupted ones, retry failed ones).")] = False,
    ) -> None:
        """Train variants (reward, action space, hyperparameters, run settings) on Ray, race their best
        checkpoints and print the leaderboard.

        Example spec (every variant is experiments/<name>-<k>/ of the base folder, with its own model prefix):

        \b
            name: speed
            base: .
            budget: {minutes: 5}
            vary:
              hyperparameters.discount_factor: [0.99, 0.999]
              reward_function: \\[rewards/progress.py, rewards/speed.py]
            race: {laps: 3}
        """
        from drlocal.learn.sweep import run_sweep

        if not spec.is_file():
            raise DrlocalError(f"{spec}: no such sweep spec.", hint="write one (see `drlocal sweep --help`).")
        run = run_sweep(spec, restart=restart, say=lambda m: console.print(m, highlight=False))
        hidden = (*SHOWN, "error", "off_track", "crashes", "variant", "total_s", "checkpoint")
        extra = [k for k in run.board.rows()[0] if k not in hidden] if run.board.entries else []
        console.print(leaderboard_table(run.board, f"sweep {spec.stem}: race on {run.board.track}, "
                                        f"{run.board.laps} laps", extra, hide=("total_s", "checkpoint")))
        console.print(f"leaderboard: {run.csv_path} (and {run.json_path.name}); {run.failed} failed, {run.skipped} "
                      f"kept from an earlier run; wall clock {run.wall_s / 60:.1f} min", highlight=False)
