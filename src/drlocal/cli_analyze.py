"""`drlocal analyze`: write the static HTML report of a model prefix (registered on the main app)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from drlocal.cli_options import CfgOpt, DirOpt, ExpOpt
from drlocal.errors import DrlocalError
from drlocal.store.layout import prefixes_holding, training_simtrace_dir


def model_files_present(root: Path) -> bool:
    """Whether a prefix folder holds anything a report can show (metrics, a simtrace or an evaluation)."""
    return root.is_dir() and ((root / "metrics" / "TrainingMetrics.json").is_file()
                              or any(training_simtrace_dir(root).glob("*-iteration.csv"))
                              or any(root.glob("evaluation-*/evaluation-simtrace/0-iteration.csv")))


class Reporter:
    """The report during `drlocal train`: a quick refresh after every iteration, a full build at the end.

    A report that fails to build never stops training: the failure is said once and the refresh continues. The
    reward-sanity warning is said when it first holds and then every WARN_EVERY iterations while it holds."""

    WARN_EVERY = 10

    def __init__(self, root: Path, track: Any, say: Any) -> None:
        self.root, self.track, self.say = Path(root), track, say
        self.out = self.root / "report"
        self._iterations = 0
        self._warned_at: int | None = None
        self._failed = False

    def _sanity(self, message: str) -> None:
        if self._warned_at is None or self._iterations - self._warned_at >= self.WARN_EVERY:
            self._warned_at = self._iterations
            self.say(f"[yellow]warning:[/] {message}")

    def _build(self, quick: bool) -> Path | None:
        from drlocal.analysis.report import build_report

        try:
            return build_report(self.root, self.out, track=self.track, quick=quick, say=self._sanity)
        except Exception as err:  # the report is a by-product: it must never stop training
            if not self._failed:
                self._failed = True
                self.say(f"[yellow]warning:[/] the report in {self.out} could not be built ({type(err).__name__}: "
                         f"{err}); training goes on without it.")
            return None

    def iteration(self) -> None:
        self._iterations += 1
        self._build(quick=True)

    def final(self) -> None:
        index = self._build(quick=False)
        if index is not None:
            self.say(f"report: {index}")


class TensorBoardLog:
    """`drlocal train --tensorboard DIR`: the iteration's scalars as TensorBoard events (tensorboardX writes them,
    so TensorBoard itself is not needed to train), x axis = iteration."""

    def __init__(self, logdir: Path) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise DrlocalError("--tensorboard needs the tensorboardX package.",
                               hint="pip install 'drlocal[analysis]' (make install does it).") from None
        try:
            self.writer = SummaryWriter(logdir=str(logdir))
        except OSError as err:
            raise DrlocalError(f"--tensorboard {logdir}: {err.strerror or err}.",
                               hint="choose a folder you can write.") from None

    def write(self, r: Any) -> None:
        """One IterationReport (drlocal.learn.trainer) as scalars under training/, evaluation/, learner/, speed/."""
        scalars = {
            "training/reward": r.mean_reward, "training/progress": r.mean_progress, "training/laps": r.laps,
            "training/lap_time_s": r.lap_time_s, "evaluation/progress": r.eval_progress,
            "evaluation/metric": r.eval_metric, "speed/steps_per_s": r.steps_per_s,
            "speed/peak_memory_mb": r.peak_memory_mb,
            **{f"learner/{k}": v for k, v in r.learner.items()},
            **{f"speed/share_{k}": v for k, v in r.time_shares.items()},
        }
        for tag, value in scalars.items():
            if value is not None and value == value:  # None and NaN (no lap, no evaluation) are left out
                self.writer.add_scalar(tag, float(value), r.iteration)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def register(app: typer.Typer, console: Console, load: Any) -> None:
    """Add `drlocal analyze` to `app`; `load(directory, experiment, config)` returns the Job."""

    @app.command()
    def analyze(
        directory: DirOpt = Path("."),
        prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="Model prefix (default "
                                                   "DR_LOCAL_S3_MODEL_PREFIX).")] = None,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default <model "
                                                 "folder>/report/).")] = None,
        evaluation: Annotated[str | None, typer.Option("--evaluation", help="Evaluation to detail: "
                                                       "evaluation-<stamp>, its stamp, or latest (default).")] = None,
        quick: Annotated[bool, typer.Option("--quick", help="Only redraw the cheap panels (what the per-iteration "
                                            "refresh during training does).")] = False,
        policy_map: Annotated[bool, typer.Option("--policy-map", help="Instead of the report: map the greedy "
                                                 "speed / steering, entropy and value of a checkpoint over a grid of "
                                                 "poses on the track (<out>/policy-map.html).")] = False,
        checkpoint: Annotated[str | None, typer.Option("--checkpoint", help="Checkpoint of --policy-map: best "
                                                       "(default), last or its number.")] = None,
        compare: Annotated[tuple[str, str] | None, typer.Option("--compare", metavar="K1 K2", help="Policy map of "
                                                                "what changed from checkpoint K1 to K2 (best, last "
                                                                "or numbers; <out>/policy-map-compare.html).")] = None,
        offsets: Annotated[str, typer.Option("--offsets", help="Policy map: lateral offsets from the centre line "
                                             "[m], + = left.")] = "-0.3,0,0.3",
        headings: Annotated[str, typer.Option("--headings", help="Policy map: heading errors [deg], + = nose "
                                              "left.")] = "-20,0,20",
        stride: Annotated[int, typer.Option("--stride", help="Policy map: every Nth waypoint.")] = 2,
        experiment: ExpOpt = None,
        config: CfgOpt = None,
    ) -> None:
        """Write a static HTML report of a model: the console's reward graph, the analysis notebooks' plots, the
        evaluation table and videos, speed and a reward sanity check (open <out>/index.html). With --policy-map or
        --compare: the policy map of a checkpoint (or of the change between two) instead."""
        from drlocal.analysis.report import PULL_PATTERNS, build_report, read_params_yaml
        from drlocal.store.select import store_of
        from drlocal.tracks import load_track

        job = load(directory, experiment, config)
        run = job.run
        pfx = (prefix or run.model_prefix or "").strip("/")
        if not pfx:
            raise DrlocalError("no model prefix to analyse.", hint="pass --prefix, or set DR_LOCAL_S3_MODEL_PREFIX "
                                                                   "in run.env.")
        store = store_of(job)
        if policy_map or compare or checkpoint is not None:
            from drlocal.analysis.policy_map import cli_policy_map

            cli_policy_map(console, store, pfx, run, out, checkpoint=checkpoint, compare=compare, offsets=offsets,
                           headings=headings, stride=stride)
            return
        root = store.pull(pfx, PULL_PATTERNS)
        if not model_files_present(root):
            have = prefixes_holding(store.local_root, model_files_present)
            raise DrlocalError(
                f"no model {pfx!r} in {store.url(pfx)}: nothing to analyse (no TrainingMetrics.json, training "
                "simtrace or evaluation).",
                hint=("train it first (drlocal train), or pass --prefix with one of: " + ", ".join(have)) if have
                else "train a model first (drlocal train), or pass --prefix with the name of one in the bucket.")
        world = read_params_yaml(root / "training_params.yaml").get("WORLD_NAME") or run.world_name
        track = load_track(world)
        target = out if out is not None else root / "report"
        if target.exists() and not target.is_dir():
            raise DrlocalError(f"--out {target} is a file.", hint="give a folder for the report.")
        t0 = time.perf_counter()
        index = build_report(root, target, track=track, stamp_eval=evaluation, quick=quick,
                             say=lambda m: console.print(f"[yellow]warning:[/] {m}", highlight=False))
        console.print(f"report: {index} ({time.perf_counter() - t0:.1f} s)", highlight=False)
