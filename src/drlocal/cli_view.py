"""Watching from the command line: `train/evaluate --view` (the live viewer), the progress bar, `drlocal replay`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from drlocal.cli_options import CfgOpt, DirOpt, ExpOpt
from drlocal.errors import DrlocalError

ViewOpt = Annotated[bool, typer.Option("--view", help="Serve the live viewer (DRfC's dr-start-viewer page) while "
                                       "this runs.")]
HostOpt = Annotated[str, typer.Option("--host", help="Viewer address; 0.0.0.0 exposes it to your network on "
                                      "purpose.")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Viewer port (default DR_WEBVIEWER_PORT, 8100; 0 = any "
                                             "free port).")]

#: The page's query that DRfC's viewer opens with.
START_QUERY = "?robo=all&camera=kvs_stream&quality=75&width=480"


def colors_of(run: Any) -> Any:
    """The body colours of the run's car (DR_CAR_COLOR) and of any opponent."""
    from drlocal.view.frames import racer_colors

    return racer_colors(run.car_color)[0]


@contextlib.contextmanager
def viewer(job: Any, console: Console, *, enabled: bool, host: str, port: int | None,
           evaluation: bool = False) -> Iterator[Any]:
    """Yield a `FrameHub` serving the live viewer for the duration of the block (None when not `enabled`)."""
    if not enabled:
        yield None
        return
    from drlocal.tracks import load_track
    from drlocal.view.hub import FrameHub
    from drlocal.view.scene import OverlayData

    try:
        import uvicorn  # noqa: F401  (the server imports it when it starts)

        from drlocal.view.server import Viewer
    except ImportError as err:
        raise DrlocalError(f"--view needs the viewer's web server ({err.name} is not installed).",
                           hint="pip install 'drlocal[view]' (make install does it), or run without --view.") from None

    run = job.run
    port = run.webviewer_port if port is None else port
    if not 0 <= port <= 65535:
        raise DrlocalError(f"--port {port} is out of range.", hint="use 1-65535, or 0 for any free port.")
    base = OverlayData(name=run.display_name, race_type=run.race_type, extra=run.enable_extra_kvs_overlay,
                       laps=run.eval_number_of_trials if evaluation else 1)
    reverse = run.eval_reverse_direction if evaluation else run.reverse_direction
    hub = FrameHub(load_track(run.world_name), world=run.world_name, reverse=reverse, colors=colors_of(run),
                   base=base, title=f"DR-{run.run_id} - {run.model_prefix}")
    v = Viewer(hub, host=host, port=port)
    try:
        url = v.start()
    except OSError as err:
        raise DrlocalError(f"the viewer cannot listen on {host}:{port}: {err}",
                           hint="another program (an earlier run's viewer?) uses that port: pick one with --port "
                                "or DR_WEBVIEWER_PORT in system.env.") from None
    console.print(f"viewer: {url.rstrip('/')}/{START_QUERY}", highlight=False)
    try:
        yield hub
    finally:
        v.stop()


def attach_replays(hub: Any, job: Any, root: Path) -> None:
    """Let the viewer's replay section replay episodes of the model folder `root`."""
    if hub is None:
        return
    from drlocal.view.replay import Replayer

    run = job.run
    hub.replayer = Replayer(root, hub.track, world=run.world_name, reverse=run.reverse_direction,
                            colors=colors_of(run), name=run.display_name).stream


def register(app: typer.Typer, console: Console, load: Any) -> None:
    """Add `drlocal replay` to `app`; `load(directory, experiment, config)` returns the Job."""

    @app.command()
    def replay(
        directory: DirOpt = Path("."),
        iteration: Annotated[int | None, typer.Option("--iteration", "-i", help="Training iteration K (the "
                                                      "simtrace file K-iteration.csv).")] = None,
        episode: Annotated[int, typer.Option("--episode", "-E", help="Episode (the simtrace's `episode` "
                                             "column).")] = 0,
        evaluation: Annotated[str | None, typer.Option("--evaluation", help="Replay an evaluation instead: its "
                                                       "folder name (evaluation-<stamp>) or 'latest'.")] = None,
        camera: Annotated[str, typer.Option("--camera", help="kvs_stream (follow + overlay), main_camera, "
                                            "sub_camera (top) or camera (in-car).")] = "kvs_stream",
        ghost: Annotated[bool, typer.Option("--ghost", help="Draw the best lap as a ghost car, with the time "
                                            "delta.")] = False,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="MP4 to write (default "
                                                 "<model folder>/replay/...).")] = None,
        prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="Model prefix (default "
                                                   "DR_LOCAL_S3_MODEL_PREFIX).")] = None,
        experiment: ExpOpt = None,
        config: CfgOpt = None,
    ) -> None:
        """Re-render a training or evaluation episode from its simtrace into an MP4 (with an optional ghost)."""
        from drlocal.store.select import store_of
        from drlocal.tracks import load_track
        from drlocal.view.frames import CAMERA_IDS
        from drlocal.view.replay import Replayer

        if camera not in CAMERA_IDS:
            raise DrlocalError(f"--camera {camera} is not a camera.", hint=f"use one of {', '.join(CAMERA_IDS)}.")
        if (iteration is None) == (evaluation is None):
            raise DrlocalError("say what to replay: --iteration K (training) or --evaluation NAME|latest.",
                               hint="e.g. `drlocal replay --iteration 3 --episode 60`.")
        if iteration is not None and iteration < 0:
            raise DrlocalError(f"--iteration {iteration} is negative.", hint="iterations count from 0.")
        job = load(directory, experiment, config)
        run = job.run
        pfx = prefix or run.model_prefix
        root = store_of(job).pull(pfx, ["training-simtrace/*", "evaluation-*/evaluation-simtrace/*"])
        rp = Replayer(root, load_track(run.world_name), world=run.world_name,
                      reverse=run.eval_reverse_direction if evaluation else run.reverse_direction,
                      colors=colors_of(run), name=run.display_name)
        what = f"evaluation-{evaluation}" if evaluation and not evaluation.startswith("evaluation") else evaluation
        stem = f"iteration-{iteration}" if evaluation is None else str(what)
        out = out or Path(root) / "replay" / f"{stem}-episode-{episode}-{camera}{'-ghost' if ghost else ''}.mp4"
        n = rp.write(out, iteration, episode, evaluation, camera=camera, ghost=ghost)
        console.print(f"replay: {out} ({n} frames, {n / 15:.1f} s at 15 fps)", highlight=False)
