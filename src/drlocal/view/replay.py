"""Replay any training or evaluation episode from its simtrace, with an optional ghost of the best lap.

The simtrace has, per step, the pose (X, Y [m], yaw [deg]), the commanded steering [deg] and throttle [m/s],
progress [%], the sim clock (tstamp [s]) and the status: enough to re-render the episode through the same
cameras and overlays as the live viewer (`frames.Composer`). Objects (obstacles, bots) are not in the simtrace,
so replays show the car alone.

The ghost is the fastest complete lap of the same kind (training laps for a training episode, the
evaluation's laps for an evaluation), drawn as a pale car **time-aligned**: at the replayed car's step k the
ghost is where it was k steps after its own start. The delta is `t - t_ghost(progress)`: how much later than
the ghost the car reached its current progress (positive = behind).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from drlocal.errors import DrlocalError
from drlocal.sim.episode import LAP_COMPLETE
from drlocal.store.layout import training_simtrace_dir
from drlocal.view.frames import GHOST_COLOR, BodyColors, Composer
from drlocal.view.record import Shot, follow_poses
from drlocal.view.scene import OverlayData, Scene


@dataclass
class Episode:
    """One episode's simtrace rows as arrays (T steps)."""

    episode: int
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray  # [rad]
    steer: np.ndarray  # [deg]
    throttle: np.ndarray  # [m/s]
    progress: np.ndarray  # [%]
    t: np.ndarray  # sim time since the episode's first step [s]
    status: list[str]

    @property
    def lap_complete(self) -> bool:
        return bool(self.status) and self.status[-1] == LAP_COMPLETE

    @property
    def lap_time(self) -> float:
        """Time of the lap (steps × 1/15 s, as DeepRacer counts it) [s]."""
        return float(len(self.t)) / 15.0


def read_episodes(path: Path) -> dict[int, Episode]:
    """All episodes of one simtrace CSV, by the `episode` column."""
    cols: dict[int, dict[str, list]] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                e = cols.setdefault(int(row["episode"]), {k: [] for k in
                                                          ("X", "Y", "yaw", "steer", "throttle", "progress",
                                                           "tstamp", "episode_status")})
                for k, v in e.items():
                    v.append(row[k])
    except (KeyError, ValueError) as err:
        raise DrlocalError(f"{path} is not a DeepRacer simtrace ({err}).",
                           hint="replay reads the CSVs drlocal / DRfC write (training-simtrace, "
                                "evaluation-*/evaluation-simtrace).") from None
    out = {}
    for ep, c in cols.items():
        ts = np.asarray(c["tstamp"], float)
        out[ep] = Episode(ep, np.asarray(c["X"], float), np.asarray(c["Y"], float),
                          np.radians(np.asarray(c["yaw"], float)), np.asarray(c["steer"], float),
                          np.asarray(c["throttle"], float), np.asarray(c["progress"], float), ts - ts[0],
                          list(c["episode_status"]))
    return out


def simtrace_path(root: Path, iteration: int | None, evaluation: str | None) -> Path:
    """The simtrace of training iteration K (`training-simtrace/K-iteration.csv`) or of an evaluation
    (`evaluation-<stamp>/evaluation-simtrace/0-iteration.csv`; "latest" = the newest)."""
    if evaluation is not None:
        runs = sorted(root.glob("evaluation-*/evaluation-simtrace/0-iteration.csv"))
        if evaluation != "latest":
            runs = [p for p in runs if p.parent.parent.name in (evaluation, f"evaluation-{evaluation}")]
        if not runs:
            raise DrlocalError(f"no evaluation {evaluation!r} in {root}.",
                               hint="run `drlocal evaluate` first, or give a folder name such as "
                                    "evaluation-20261201120000.")
        return runs[-1]
    folder = training_simtrace_dir(root)
    path = folder / f"{iteration}-iteration.csv"
    if not path.is_file():
        have = sorted(int(p.name.split("-")[0]) for p in folder.glob("*-iteration.csv"))
        span = f"iterations {have[0]}-{have[-1]}" if have else "no iterations"
        raise DrlocalError(f"iteration {iteration} has no simtrace in {folder} ({span}).",
                           hint="pick one of the iterations listed (0-based, as the file names).")
    return path


def best_lap(paths: Sequence[Path]) -> Episode | None:
    """The fastest complete lap in the given simtraces (None when no lap was completed)."""
    best: Episode | None = None
    for p in paths:
        for ep in read_episodes(p).values():
            if ep.lap_complete and (best is None or ep.lap_time < best.lap_time):
                best = ep
    return best


def ghost_delta(ep: Episode, ghost: Episode) -> np.ndarray:
    """(T,) seconds the car is behind the ghost at each step (by progress reached; negative = ahead)."""
    gp = np.maximum.accumulate(ghost.progress)
    tg = np.interp(ep.progress, gp, ghost.t)
    return ep.t - tg


def shots(ep: Episode, colors: BodyColors, base: OverlayData, ghost: Episode | None = None) -> list[Shot]:
    """The episode as shots for the composer: the car (and the ghost) with the overlay numbers per step."""
    out = []
    dt = np.diff(ep.t, prepend=ep.t[0] - 1 / 15)
    dist = np.hypot(np.diff(ep.x, prepend=ep.x[0]), np.diff(ep.y, prepend=ep.y[0]))
    speed = dist / np.maximum(dt, 1e-6)  # measured, as the simapp's video metrics
    best = last = None
    for k in range(len(ep.t)):
        xy = [[ep.x[k], ep.y[k]]]
        yaw = [ep.yaw[k]]
        kinds, cols = ["car"], [colors.agent]
        if ghost is not None:
            g = min(k, len(ghost.t) - 1)
            xy.append([ghost.x[g], ghost.y[g]])
            yaw.append(ghost.yaw[g])
            kinds.append("car")
            cols.append(GHOST_COLOR)
        if ep.status[k] == LAP_COMPLETE:
            last = float(ep.t[k]) + 1 / 15
            best = last if best is None else min(best, last)
        scene = Scene(np.asarray(xy, float), np.asarray(yaw, float), tuple(kinds), np.asarray(cols, np.uint8))
        data = replace(base, steering=float(ep.steer[k]), throttle=float(ep.throttle[k]), speed=float(speed[k]),
                       progress=float(ep.progress[k]), race_time=float(ep.t[k]), best_lap=best, last_lap=last,
                       done=k == len(ep.t) - 1 and base.phase == "Evaluating")
        out.append(Shot(scene, data, float(ep.t[k])))
    return out


def annotate_delta(frame: np.ndarray, delta: float) -> np.ndarray:
    """Draw the ghost's time delta (`Ghost +0.42 s`, red behind / green ahead) at the top right of a frame."""
    from PIL import Image, ImageDraw

    from drlocal.view.overlay import font

    img = Image.fromarray(frame)
    d = ImageDraw.Draw(img)
    text = f"Ghost {delta:+.2f} s"
    f = font(22, bold=True)
    w = d.textlength(text, font=f)
    x, y = frame.shape[1] - w - 12, 96
    d.text((x + 2, y + 2), text, font=f, fill=(0, 0, 0))
    d.text((x, y), text, font=f, fill=(235, 80, 80) if delta > 0 else (90, 220, 120))
    return np.asarray(img)


class Replayer:
    """Replays of one model folder: frames for the viewer and MP4 files for `drlocal replay`."""

    def __init__(self, root: Path, track: object, *, world: str | None = None, reverse: bool = False,
                 colors: BodyColors | None = None, name: str = "") -> None:
        self.root, self.track, self.world, self.reverse = Path(root), track, world, reverse
        self.colors = colors or BodyColors()
        self.name = name
        self._composer: Composer | None = None
        self._ghosts: dict[tuple[str, int], Episode | None] = {}

    def composer(self) -> Composer:
        if self._composer is None:
            self._composer = Composer(self.track, world=self.world, reverse=self.reverse)
        return self._composer

    def load(self, iteration: int | None, episode: int, evaluation: str | None = None,
             ghost: bool = False) -> tuple[list[Shot], np.ndarray | None]:
        """The shots of one episode and, with `ghost`, the per-step time delta to the best lap."""
        path = simtrace_path(self.root, iteration, evaluation)
        episodes = read_episodes(path)
        if episode not in episodes:
            have = sorted(episodes)
            raise DrlocalError(f"episode {episode} is not in {path} (it holds episodes {have[0]}-{have[-1]}).",
                               hint="episodes are numbered as the simtrace's `episode` column.")
        ep = episodes[episode]
        g = self._ghost(path, evaluation is not None) if ghost else None
        phase = "Evaluating" if evaluation is not None else "Training"
        base = OverlayData(phase=phase, name=self.name, extra=True, laps=1)
        delta = ghost_delta(ep, g) if g is not None else None
        return shots(ep, self.colors, base, g), delta

    def _ghost(self, path: Path, evaluation: bool) -> Episode | None:
        key = (str(path) if evaluation else "training", 0)
        if key not in self._ghosts:
            paths = [path] if evaluation else sorted(training_simtrace_dir(self.root).glob("*-iteration.csv"))
            self._ghosts[key] = best_lap(paths)
        return self._ghosts[key]

    def frames(self, shots_: Sequence[Shot], camera: str, delta: np.ndarray | None,
               evaluation: bool = False) -> Iterator[np.ndarray]:
        comp = self.composer()
        for k, (shot, pose) in enumerate(zip(shots_, follow_poses(shots_, 1 / 15), strict=True)):
            frame = comp.render(camera, shot.scene, shot.data, follow=pose, evaluation=evaluation)
            yield annotate_delta(frame, float(delta[k])) if delta is not None else frame

    def stream(self, iteration: int, episode: int, camera: str, ghost: bool) -> Iterator[np.ndarray]:
        """The viewer's replay: iteration < 0 means the latest evaluation."""
        evaluation = "latest" if iteration < 0 else None
        try:
            s, delta = self.load(None if evaluation else iteration, episode, evaluation, ghost)
        except DrlocalError as err:
            raise LookupError(str(err)) from None
        return self.frames(s, camera, delta, evaluation=evaluation is not None)

    def write(self, out: Path, iteration: int | None, episode: int, evaluation: str | None = None,
              camera: str = "kvs_stream", ghost: bool = False) -> int:
        """Render one episode into an MP4 (640×480, 15 fps, H.264); returns the number of frames."""
        from drlocal.view.video import Mp4Writer

        s, delta = self.load(iteration, episode, evaluation, ghost)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Mp4Writer(out, fps=15) as w:
            for frame in self.frames(s, camera, delta, evaluation=evaluation is not None):
                w.write(frame)
        return len(s)
