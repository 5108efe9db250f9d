"""Episodes of N cars on one track, with the simapp's step timing and reset rules (contract §1, §3).

Hand-written because it is DeepRacer-specific (simapp `rollout_agent_ctrl.py`, `reset/rules/`).
Each call to `World.step` is one DeepRacer step for every car:

1. the step counter increments; params are computed from the pose at the *start* of the step
   combined with the newly commanded action (so off-track is detected one step late);
2. the first step of an episode is PREPARE: the action is not executed, the car stays at the
   start pose, the reward is 0.0 and the reward function is not called (it first sees steps == 2);
3. in RUN the reset rules are evaluated, the reward function is called (also on the terminal
   step) and the status is the first set flag in the order lap_complete, crashed, off_track,
   immobilized, time_up, reversed;
4. cars still running then drive for one camera period (1/15 s of sim time).

Cars whose episode ended are restarted with `World.reset(mask)`; training episodes advance the
start by `round_robin_advance_dist` of the lap and may alternate the driving direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from shapely.geometry import Point

from drlocal.errors import InvalidActionError, NonFiniteStateError
from drlocal.sim import car as carmod
from drlocal.sim.car import STEP_SECONDS, CarParams, CarState
from drlocal.sim.params import ParamsBatch, compute_geometry
from drlocal.sim.reward import RewardFunction, load_reward_function
from drlocal.tracks.track import Track

# episode_status strings, as in the simtrace (contract §3.1)
PREPARE = "prepare"
IN_PROGRESS = "in_progress"
LAP_COMPLETE = "lap_complete"
OFF_TRACK = "off_track"
CRASHED = "crashed"
IMMOBILIZED = "immobilized"
REVERSED = "reversed"
TIME_UP = "time_up"
#: Labels used in metrics JSON files for each status.
STATUS_LABELS = {
    PREPARE: "Prepare", IN_PROGRESS: "In progress", LAP_COMPLETE: "Lap complete", OFF_TRACK: "Off track",
    CRASHED: "Crashed", IMMOBILIZED: "Immobilized", REVERSED: "Reversed", TIME_UP: "Time Up",
    "pause": "Pause", "park": "Park",
}
MAX_STEPS = 100_000  # simapp hard cap per episode


@dataclass(frozen=True)
class EpisodeOptions:
    """World options of the simapp that shape episodes (DRfC `DR_*` names in brackets).

    Attributes:
        training: training episodes advance the start position; evaluation ones don't.
        change_start_position: round-robin starts [DR_TRAIN_CHANGE_START_POSITION]; None = `training`.
        round_robin_advance_dist: start advance per training episode, fraction of the lap
            [DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST].
        start_position_offset: first start, fraction of the lap [DR_TRAIN_START_POSITION_OFFSET].
        alternate_driving_direction: flip direction after each training episode
            [DR_TRAIN_ALTERNATE_DRIVING_DIRECTION].
        reverse_direction: start in the reversed direction [DR_TRAIN_REVERSE_DIRECTION].
        number_of_reverse_counts: steps of falling progress before `reversed`.
        immobilized_steps, immobilized_dist: `immobilized` after this many consecutive steps in
            which base_link moved at most this far [m].
        continuous, number_of_trials: evaluation: keep driving after a lap until this many laps.
        number_of_resets: off-track / reversed / immobilized events that re-place the car instead
            of ending the episode (training: 0) [DR_EVAL_MAX_RESETS].
        off_track_penalty, collision_penalty: pause after a reset [s] [DR_EVAL_*_PENALTY].
    """

    training: bool = True
    change_start_position: bool | None = None
    round_robin_advance_dist: float = 0.05
    start_position_offset: float = 0.0
    alternate_driving_direction: bool = False
    reverse_direction: bool = False
    number_of_reverse_counts: int = 15
    immobilized_steps: int = 15
    immobilized_dist: float = 0.0003
    continuous: bool = False
    number_of_trials: int = 1
    number_of_resets: int = 0
    off_track_penalty: float = 0.0
    collision_penalty: float = 0.0

    @property
    def round_robin(self) -> bool:
        return self.training if self.change_start_position is None else self.change_start_position


@dataclass
class StepResult:
    """What one `World.step` produced for every car; arrays have shape (N,).

    `geometry` holds the params of the pose at the start of the step (the simtrace row);
    `params` is the list of per-car params dicts (the reward function's input).
    """

    reward: np.ndarray
    done: np.ndarray
    status: np.ndarray  # object array of episode_status strings
    steps: np.ndarray  # float step counter used for this step
    sim_time: np.ndarray  # sim time at the start of the step [s]
    speed: np.ndarray  # commanded speed [m/s]
    steering_angle: np.ndarray  # commanded steering [deg]
    geometry: ParamsBatch
    params: list[dict] = field(default_factory=list)
    truncated: np.ndarray | None = None  # episodes cut by the 100000-step cap (not a DeepRacer status)
    pause_duration: np.ndarray | None = None  # pause left after this step [s]
    reset: np.ndarray | None = None  # cars re-placed (reset) at this step
    laps: np.ndarray | None = None  # laps completed so far in the episode

    @property
    def progress(self) -> np.ndarray:
        return self.geometry.progress


class World:
    """N cars on one track, each running its own sequence of DeepRacer episodes."""

    def __init__(
        self,
        track: Track,
        n_cars: int = 1,
        reward_function: RewardFunction | None = None,
        options: EpisodeOptions | None = None,
        car_params: CarParams | None = None,
        start_ndist: np.ndarray | float | None = None,
        dt: float = STEP_SECONDS,
        advance_stride: int = 1,
    ) -> None:
        self.track = track
        self.n = int(n_cars)
        self.reward_function = reward_function or load_reward_function(None)
        self.options = options or EpisodeOptions()
        self.car_params = car_params or CarParams()
        self.dt = float(dt)
        # Parallel cars play consecutive episodes of one DeepRacer worker: car i starts at
        # offset + i·advance and, with stride N, its j-th episode starts where episode i + jN would.
        self.advance_stride = int(advance_stride)
        n = self.n
        first = self.options.start_position_offset if start_ndist is None else start_ndist
        self.start_ndist = np.broadcast_to(np.asarray(first, dtype=np.float64) % 1.0, (n,)).copy()
        self.reverse = np.full(n, bool(self.options.reverse_direction))
        self.car = CarState.at_rest(np.zeros(n), np.zeros(n), np.zeros(n))
        self.steps = np.zeros(n)
        self.sim_time = np.zeros(n)
        self.prev_progress = np.zeros(n)
        self.reverse_count = np.zeros(n, dtype=np.int64)
        self.immobile_count = np.zeros(n, dtype=np.int64)
        self.prev_xy = np.zeros((n, 2))
        self.episode = np.full(n, -1, dtype=np.int64)  # 0-based episode counter per car
        self.needs_advance = np.zeros(n, dtype=bool)
        self.pause_left = np.zeros(n)  # remaining pause after a reset [s]
        self.resets = np.zeros(n, dtype=np.int64)  # resets used this episode
        self.laps = np.zeros(n, dtype=np.int64)  # laps completed this episode
        self.reset()

    # ----- episode starts -----

    def start_poses(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start poses (xy (k, 2), yaw (k,)) of the selected cars: centre line at start_ndist, heading
        towards the next waypoint (forward difference), in each car's driving direction."""
        idx = np.flatnonzero(mask)
        xy = np.empty((idx.size, 2))
        yaw = np.empty(idx.size)
        for direction in (False, True):
            sel = self.reverse[idx] == direction
            if sel.any():
                lines = self.track.lines(direction)
                xy[sel], yaw[sel] = lines.pose_at(self.start_ndist[idx[sel]] * lines.length)
        return xy, yaw

    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start a new episode for the cars in `mask` (all when None).

        Training episodes after the first advance the start (round robin) and may flip direction,
        as the simapp does when a training episode ends.
        """
        mask = np.ones(self.n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        adv = mask & self.needs_advance
        if self.options.training and self.options.round_robin:
            step = self.options.round_robin_advance_dist * self.advance_stride
            self.start_ndist[adv] = (self.start_ndist[adv] + step) % 1.0
        if self.options.training and self.options.alternate_driving_direction:
            self.reverse[adv] = ~self.reverse[adv]
        xy, yaw = self.start_poses(mask)
        bad = ~np.isfinite(xy).all(axis=1) | ~np.isfinite(yaw)
        if bad.any():  # simapp: NaN/inf start poses fall back to distance 0 on the centre line
            self.start_ndist[np.flatnonzero(mask)[bad]] = 0.0
            xy, yaw = self.start_poses(mask)
        self.car.place(mask, xy[:, 0], xy[:, 1], yaw)
        self.steps[mask] = 0.0
        self.sim_time[mask] = 0.0
        self.prev_progress[mask] = 0.0
        self.reverse_count[mask] = 0
        self.immobile_count[mask] = 0
        self.prev_xy[mask] = xy
        self.episode[mask] += 1
        self.needs_advance[mask] = False
        self.pause_left[mask] = 0.0
        self.resets[mask] = 0
        self.laps[mask] = 0

    # ----- one step -----

    def geometry(self) -> ParamsBatch:
        """Params geometry of the current poses (what the next step will judge)."""
        return compute_geometry(
            self.track, self.reverse, self.car.x, self.car.y, self.car.yaw, self.start_ndist, self.prev_progress
        )

    def step(self, speed: np.ndarray, steering_angle: np.ndarray, active: np.ndarray | None = None) -> StepResult:
        """One DeepRacer step for every car with commanded speed [m/s] and steering [deg], each (N,).

        Cars whose episode is done must be `reset` before their next step. Cars outside the
        optional `active` mask (N,) are left untouched (no step, reward 0, status of their last step).
        """
        speed = np.broadcast_to(np.asarray(speed, dtype=np.float64), (self.n,))
        steer = np.broadcast_to(np.asarray(steering_angle, dtype=np.float64), (self.n,))
        act = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        self._check_finite(act, speed, steer)
        self.steps[act] += 1.0
        geo = self.geometry()
        paused = act & (self.pause_left > 0.0)
        prepare = act & (self.steps == 1.0)
        run = act & (self.steps > 1.0) & ~paused
        opts = self.options

        xy = np.stack([self.car.x, self.car.y], axis=-1)
        last_xy = self.prev_xy.copy()
        moved = np.hypot(xy[:, 0] - self.prev_xy[:, 0], xy[:, 1] - self.prev_xy[:, 1])  # no overflow far away
        immobile = np.where(run & (moved <= opts.immobilized_dist), self.immobile_count + 1, 0)
        falling = np.where(run & (geo.progress < self.prev_progress), self.reverse_count + 1, 0)
        self.immobile_count = np.where(act, immobile, self.immobile_count)
        self.reverse_count = np.where(act, falling, self.reverse_count)
        self.prev_xy = np.where(act[:, None], xy, self.prev_xy)

        lap = run & (geo.progress >= 100.0)
        off = run & geo.is_offtrack
        immobile = run & (self.immobile_count >= opts.immobilized_steps)
        reversed_ = run & (self.reverse_count >= opts.number_of_reverse_counts)
        status = np.full(self.n, IN_PROGRESS, dtype=object)
        status[prepare] = PREPARE
        status[paused] = "pause"
        # assign lowest priority first so that higher-priority flags overwrite
        status[reversed_] = REVERSED
        status[immobile] = IMMOBILIZED
        status[off] = OFF_TRACK
        status[lap] = LAP_COMPLETE
        terminal = (off | immobile | reversed_) & ~lap
        self.laps[lap] += 1
        lap_done = lap & (~np.bool_(opts.continuous) | (self.laps >= opts.number_of_trials))
        pause_now = terminal & (self.resets < opts.number_of_resets)
        truncated = run & (self.steps >= MAX_STEPS) & ~(lap_done | terminal)
        done = lap_done | (terminal & ~pause_now) | truncated

        reward = np.zeros(self.n)
        params = [
            geo.params_dict(
                i, speed=speed[i], steering_angle=steer[i], steps=self.steps[i], sim_time=self.sim_time[i]
            )
            for i in range(self.n)
        ]
        for i in np.flatnonzero(run):
            reward[i] = self.reward_function(params[i])  # user code: one call per car
        prev_before = self.prev_progress.copy()
        new_prev = np.where(geo.progress == 100.0, 0.0, geo.progress)
        self.prev_progress = np.where(act, new_prev, self.prev_progress)

        if pause_now.any():
            self._replace_after_reset(pause_now, prev_before, last_xy)
            penalty = np.where(immobile, 0.0, opts.off_track_penalty)
            self.pause_left[pause_now] = penalty[pause_now]
            self.resets[pause_now] += 1
        left = self.pause_left[paused] - self.dt
        self.pause_left[paused] = np.where(left > 1e-9, left, 0.0)  # 1.0 s is exactly 15 steps
        result = StepResult(
            reward=reward, done=done, status=status, steps=self.steps.copy(), sim_time=self.sim_time.copy(),
            speed=speed.copy(), steering_angle=steer.copy(), geometry=geo, params=params, truncated=truncated,
            pause_duration=self.pause_left.copy(), reset=pause_now, laps=self.laps.copy(),
        )

        # physics: running cars drive; PREPARE, paused, re-placed and finished cars are held
        drive = run & ~done & ~pause_now
        if drive.any():
            moved_state = carmod.step(self.car, speed, steer, self.car_params, self.dt)
            self._check_state(drive, moved_state, speed, steer)
            for name in vars(self.car):
                cur, new = getattr(self.car, name), getattr(moved_state, name)
                if isinstance(cur, np.ndarray) and cur.shape[:1] == (self.n,):
                    cur[drive] = new[drive]
        self.sim_time[act] += self.dt
        self.needs_advance |= done & self.options.training
        return result

    def _check_finite(self, act: np.ndarray, speed: np.ndarray, steer: np.ndarray) -> None:
        """NaN/inf commands are refused (finite ones are clipped as the simapp clips), a NaN pose is reported."""
        bad = act & ~(np.isfinite(speed) & np.isfinite(steer))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidActionError(
                f"car {i}: commanded speed {float(speed[i])} m/s, steering {float(steer[i])}°: NaN/inf cannot be "
                "driven.",
                hint="command finite values; DeepRacer clips speed to [0.1, 4] m/s and steering to ±30°.")
        self._check_state(act, self.car)

    def _check_state(self, mask: np.ndarray, state: CarState, speed: np.ndarray | None = None,
                     steer: np.ndarray | None = None) -> None:
        """Stop with one message when a car's state is NaN/inf, rather than compute rewards and train on it."""
        ok = (np.isfinite(state.x) & np.isfinite(state.y) & np.isfinite(state.yaw) & np.isfinite(state.speed)
              & np.isfinite(state.steer))
        bad = mask & ~ok
        if not bad.any():
            return
        i = int(np.flatnonzero(bad)[0])
        f = lambda a: repr(float(a[i]))  # noqa: E731
        how = "" if speed is None or steer is None else (
            f" after a step from x={f(self.car.x)}, y={f(self.car.y)}, yaw={f(self.car.yaw)} rad with "
            f"commanded speed {f(speed)} m/s and steering {f(steer)}°")
        raise NonFiniteStateError(
            f"car {i} (episode {int(self.episode[i])}, step {int(self.steps[i])}) on {self.track.name}: the car's "
            f"state is not finite (x={f(state.x)}, y={f(state.y)}, yaw={f(state.yaw)}, speed={f(state.speed)}, "
            f"steer={f(state.steer)}){how}; stopping rather than computing rewards and training on NaN.",
            hint="a pose was set outside any track (|x|, |y| beyond ~1e150 m) or the simulator has a bug: "
            "please report it with the values above.")

    def _replace_after_reset(self, mask: np.ndarray, prev_progress: np.ndarray, last_xy: np.ndarray) -> None:
        """Re-place cars after an off-track/reversed/immobilized reset (simapp `_get_car_reset_model_state`):
        at the previous step's progress along the centre line, on the inner or outer lane whichever
        is closer to the previous step's pose, heading along that lane, at rest."""
        for i in np.flatnonzero(mask):
            lines = self.track.lines(bool(self.reverse[i]))
            dist = ((self.start_ndist[i] + prev_progress[i] / 100.0) % 1.0) * lines.length
            centre = lines.interpolate(np.array([dist]))
            best = None
            for lane in ("inner_lane", "outer_lane"):
                lane_line = lines._line(lane)
                d = float(lane_line.project(Point(float(centre[0, 0]), float(centre[0, 1]))))
                xy, yaw = lines.pose_at(np.array([d]), line=lane)
                gap = float(np.hypot(*(xy[0] - last_xy[i])))
                if best is None or gap < best[0]:
                    best = (gap, xy[0], yaw[0])
            assert best is not None
            m = np.zeros(self.n, dtype=bool)
            m[i] = True
            self.car.place(m, best[1][0], best[1][1], best[2])
            self.prev_xy[i] = best[1]
            self.reverse_count[i] = 0
            self.immobile_count[i] = 0
