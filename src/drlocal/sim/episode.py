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
from drlocal.sim.objects import TrackObjects, lane_pose
from drlocal.sim.params import ParamsBatch, compute_geometry
from drlocal.sim.race import HEAD_TO_MODEL, START_POS_OFFSET, TIME_TRIAL, RaceOptions
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
    crashed_object: np.ndarray | None = None  # index of the object each car's footprint touched, -1: none
    obstacle_crash_counter: np.ndarray | None = None  # simtrace column: resets at the same obstacle (mercy)

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
        race: RaceOptions | None = None,
        stereo: bool = False,
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
        # other objects on the track (obstacles, bot cars, other racecars), per car (contract §11)
        self.race = race or RaceOptions()
        self.stereo = bool(stereo)  # object_in_camera tests both stereo frustums
        self.objects = TrackObjects(track, n, self.race)
        self.head_to_model = self.race.race_type == HEAD_TO_MODEL
        self.parked = np.zeros(n, dtype=bool)  # HEAD_TO_MODEL with done condition "all": finished cars
        self.obstacle_crash_counter = np.zeros(n, dtype=np.int64)
        self.mercy_object = np.full(n, -1, dtype=np.int64)  # obstacle of the last reset near one
        if self.race.race_type != TIME_TRIAL and self.objects.k:
            # the simapp places its obstacles once at start-up, before the first episode reset
            self.objects.place(np.ones(n, dtype=bool), self.reverse, self._ordinal(np.zeros(n, dtype=np.int64)) - 1)
        self.reset()

    # ----- episode starts -----

    def _ordinal(self, episode: np.ndarray) -> np.ndarray:
        """Number of each car's episode `episode` (N,) within its DeepRacer worker (0 = first): car i plays the
        worker's episodes i, i + N, i + 2N, … when the N cars sweep the start line together (advance_stride = N)."""
        if self.advance_stride > 1:
            return np.arange(self.n) + self.advance_stride * episode
        return episode

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
        if self.head_to_model and self.n > 1 and not self.options.training:
            # several racecars (simapp get_racecar_start_pose): car i starts 0.75·i m behind the line,
            # even cars on the outer lane, odd cars on the inner lane
            for row, i in enumerate(idx):
                lines = self.track.lines(bool(self.reverse[i]))
                lane = "inner_lane" if i % 2 else "outer_lane"
                lane_len = float(lines._line(lane).length)
                d = (self.start_ndist[i] * lines.length - START_POS_OFFSET * i) % lane_len
                p, a = lines.pose_at(np.array([d]), line=lane)
                xy[row], yaw[row] = p[0], a[0]
        elif self.options.training and self.objects.k:
            # training: an object within 1 m of the start (as placed for the previous episode: the agent is
            # reset before the obstacles) moves the start to the lane opposite to it
            for row, i in enumerate(idx):
                lines = self.track.lines(bool(self.reverse[i]))
                start_dist = self.start_ndist[i] * lines.length
                kk = self.objects.closest(int(i), start_dist, obstacles_only=False)
                if kk >= 0:
                    lane = "outer_lane" if self.objects.is_inner(int(i), kk) else "inner_lane"
                    p, a = lane_pose(lines, np.array([start_dist]), np.array([lane == "outer_lane"]))
                    xy[row], yaw[row] = p[0], a[0]
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
        self.obstacle_crash_counter[mask] = 0
        self.mercy_object[mask] = -1
        self.parked[mask] = False
        if self.objects.k and not self.head_to_model:
            self.objects.place(mask, self.reverse, self._ordinal(self.episode))
        if self.head_to_model:
            self.objects.set_racecars(*self._racecar_poses())

    # ----- one step -----

    def geometry(self) -> ParamsBatch:
        """Params geometry of the current poses (what the next step will judge)."""
        return compute_geometry(
            self.track, self.reverse, self.car.x, self.car.y, self.car.yaw, self.start_ndist, self.prev_progress
        )

    def _racecar_poses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HEAD_TO_MODEL: base poses of the cars as objects for the others; parked cars leave the track."""
        x, y = self.car.x.copy(), self.car.y.copy()
        x[self.parked] = np.nan
        y[self.parked] = np.nan
        return x, y, self.car.yaw.copy()

    def step(self, speed: np.ndarray, steering_angle: np.ndarray, active: np.ndarray | None = None) -> StepResult:
        """One DeepRacer step for every car with commanded speed [m/s] and steering [deg], each (N,).

        Cars whose episode is done must be `reset` before their next step. Cars outside the
        optional `active` mask (N,) are left untouched (no step, reward 0, status of their last step).
        """
        speed = np.broadcast_to(np.asarray(speed, dtype=np.float64), (self.n,))
        steer = np.broadcast_to(np.asarray(steering_angle, dtype=np.float64), (self.n,))
        act = np.ones(self.n, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        act = act & ~self.parked
        self._check_finite(act, speed, steer)
        self.steps[act] += 1.0
        objs = self.objects
        if objs.k:
            objs.send_action(act, self.sim_time)  # bots in RUN move to this step's sim time
            if self.head_to_model:
                objs.set_racecars(*self._racecar_poses())
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

        # collisions: footprint corners inside another object's footprint (contract §3.1); a car or bot car
        # only counts when the agent is behind it, otherwise the step is `in_progress` (and nothing else is
        # judged on it, as in the simapp's elif chain); a bot that rear-ends the agent freezes the bots
        hit = objs.collide(self.car.x, self.car.y, self.car.yaw) if objs.k else np.full(self.n, -1)
        hit = np.where(run, hit, -1)
        crash = hit >= 0
        counted = crash.copy()
        rear_ended = np.zeros(self.n, dtype=bool)
        for i in np.flatnonzero(crash):
            counted[i], rear_ended[i] = objs.crash_counts(int(i), int(hit[i]), geo.progress[i], self.start_ndist[i])

        lap = run & (geo.progress >= 100.0)
        crashed = counted & ~lap
        ignored = crash & ~counted & ~lap  # a crash into a car ahead of which the agent is: in_progress
        off = run & geo.is_offtrack & ~crash
        immobile = run & (self.immobile_count >= opts.immobilized_steps) & ~crash
        reversed_ = run & (self.reverse_count >= opts.number_of_reverse_counts) & ~crash
        status = np.full(self.n, IN_PROGRESS, dtype=object)
        status[prepare] = PREPARE
        status[paused] = "pause"
        # assign lowest priority first so that higher-priority flags overwrite
        status[reversed_] = REVERSED
        status[immobile] = IMMOBILIZED
        status[off] = OFF_TRACK
        status[crashed] = CRASHED
        status[ignored] = IN_PROGRESS
        status[lap] = LAP_COMPLETE
        terminal = (crashed | off | immobile | reversed_) & ~lap
        self.laps[lap] += 1
        lap_done = lap & (~np.bool_(opts.continuous) | (self.laps >= opts.number_of_trials))
        pause_now = terminal & (self.resets < opts.number_of_resets)
        truncated = run & (self.steps >= MAX_STEPS) & ~(lap_done | terminal)
        done = lap_done | (terminal & ~pause_now) | truncated
        # `is_crashed` is the crash rule's flag, forced to False when the step neither ends nor pauses
        is_crashed = crash & (done | pause_now)

        reward = np.zeros(self.n)
        view = (objs.observe(np.stack([geo.x, geo.y], axis=-1), self.car.x, self.car.y, self.car.yaw, self.stereo)
                if objs.k else None)
        params = [
            geo.params_dict(
                i, speed=speed[i], steering_angle=steer[i], steps=self.steps[i], sim_time=self.sim_time[i],
                is_crashed=bool(is_crashed[i]), objects=objs.params(i, view) if view is not None else None,
            )
            for i in range(self.n)
        ]
        for i in np.flatnonzero(run):
            reward[i] = self.reward_function(params[i])  # user code: one call per car
        prev_before = self.prev_progress.copy()
        new_prev = np.where(geo.progress == 100.0, 0.0, geo.progress)
        self.prev_progress = np.where(act, new_prev, self.prev_progress)

        if pause_now.any():
            for i in np.flatnonzero(pause_now):
                if crashed[i]:
                    self.pause_left[i] = opts.collision_penalty
                    if objs.is_obstacle[int(hit[i])]:
                        # crash into an obstacle: re-placed at once from the current progress (behind it)
                        self._replace(int(i), float(geo.progress[i]), xy[i])
                else:
                    self.pause_left[i] = 0.0 if immobile[i] else opts.off_track_penalty
                    self._replace(int(i), float(prev_before[i]), last_xy[i])
            self.resets[pause_now] += 1
        left = self.pause_left[paused] - self.dt
        self.pause_left[paused] = np.where(left > 1e-9, left, 0.0)  # 1.0 s is exactly 15 steps
        if objs.k:
            objs.judge(act, rear_ended, self.dt)
        counter = self.obstacle_crash_counter.copy()
        self.obstacle_crash_counter[done] = 0  # the simapp clears it once the step is logged
        result = StepResult(
            reward=reward, done=done, status=status, steps=self.steps.copy(), sim_time=self.sim_time.copy(),
            speed=speed.copy(), steering_angle=steer.copy(), geometry=geo, params=params, truncated=truncated,
            pause_duration=self.pause_left.copy(), reset=pause_now, laps=self.laps.copy(),
            crashed_object=hit, obstacle_crash_counter=counter,
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

    def _replace(self, i: int, progress: float, ref_xy: np.ndarray) -> None:
        """Re-place car i after a reset (simapp `_get_car_reset_model_state`), at rest.

        The spawn point is `progress` [%] of the lap from the episode's start, on the centre line. If an
        obstacle lies within 1 m of it along the track, the car goes RESET_BEHIND_DIST behind that obstacle
        on the lane opposite to it (with the mercy reset: RESET_AHEAD_DIST ahead of it after
        MAX_RESETS_AFTER_CRASH resets at the same obstacle); otherwise on the inner or outer lane, whichever
        is closer to `ref_xy` (the previous step's pose after off-track / reversed / immobilized).
        """
        lines = self.track.lines(bool(self.reverse[i]))
        spawn = ((self.start_ndist[i] + progress / 100.0) % 1.0) * lines.length
        objs, race = self.objects, self.race
        k = objs.closest(i, spawn, obstacles_only=True) if objs.k else -1
        if k >= 0:
            obj_dist = objs.center_dist(i, k)
            spawn = obj_dist - race.reset_behind_dist
            if race.enable_mercy_reset:
                if self.mercy_object[i] != k:
                    self.mercy_object[i] = k
                    self.obstacle_crash_counter[i] = 1
                else:
                    self.obstacle_crash_counter[i] += 1
                if self.obstacle_crash_counter[i] == race.max_resets_after_crash:
                    spawn = obj_dist + race.reset_ahead_dist
                    self.obstacle_crash_counter[i] = 0
            outer = objs.is_inner(i, k)
            p, a = lane_pose(lines, np.array([spawn % lines.length]), np.array([outer]))
            best_xy, best_yaw = p[0], float(a[0])
        else:
            centre = lines.interpolate(np.array([spawn]))
            best = None
            for lane in ("inner_lane", "outer_lane"):
                lane_line = lines._line(lane)
                d = float(lane_line.project(Point(float(centre[0, 0]), float(centre[0, 1]))))
                pxy, pyaw = lines.pose_at(np.array([d]), line=lane)
                gap = float(np.hypot(*(pxy[0] - ref_xy)))
                if best is None or gap < best[0]:
                    best = (gap, pxy[0], float(pyaw[0]))
            assert best is not None
            best_xy, best_yaw = best[1], best[2]
        m = np.zeros(self.n, dtype=bool)
        m[i] = True
        self.car.place(m, best_xy[0], best_xy[1], best_yaw)
        self.prev_xy[i] = best_xy
        self.reverse_count[i] = 0
        self.immobile_count[i] = 0
