"""`DeepRacerVectorEnv`: N DeepRacer cars on one track as one natively batched Gymnasium VectorEnv.

## Description
Each sub-environment is one car running DeepRacer episodes with the simapp's semantics
(`drlocal.sim.episode.World`): the first step of every episode is PREPARE (action ignored,
reward 0), reward and termination come from the pose at the start of the step, terminations are
lap_complete / off_track / immobilized / reversed. All cars share the track and the step.

## Action Space
From model_metadata: `Discrete(n)` for a discrete action list; `Box(-1, 1, (2,))` ordered
(steering, speed) for a continuous space, rescaled linearly to the [low, high] ranges.

## Observation Space
From model_metadata's `sensor` list: camera (120, 160, 1|2) uint8, LIDAR variants float32;
a `Dict` keyed by sensor name when there are several.

## Rewards
The user's `reward_function(params)` (a path or a callable; default: centre-line reward).

## Other objects (race types)
`race_type` TIME_TRIAL (default), OBJECT_AVOIDANCE (boxes or static bot cars on the lanes) or
HEAD_TO_BOT (bot cars driving the lanes); the obstacle and bot settings are further keywords with the
names of `drlocal.sim.race.RaceOptions` (`number_of_obstacles`, `randomize_obstacle_locations`,
`object_positions`, `number_of_bot_cars`, `bot_car_speed`, `is_lane_change`, …) or a whole
`race=RaceOptions(...)`. Every car of the batch has its own objects; they are drawn in its camera
images and hit by its LIDAR, and a crash (`crashed`) ends the episode. HEAD_TO_MODEL (with
training=False) makes the env's N cars race each other: car i starts 0.75·i m behind the line (even
cars on the outer lane, odd on the inner), each sees the others as objects; `drlocal evaluate
--opponent` uses it to race two trained models.

## Starting State
Centre line at the episode's start position, heading to the next waypoint, at rest. Car i
starts at `start_position_offset + i·round_robin_advance_dist` of the lap and, in training,
advances N·advance after each of its episodes, so the N cars sweep the lap like consecutive
episodes of one DeepRacer worker.

## Episode Termination
terminated on lap_complete, off_track, immobilized, reversed; truncated at 100000 steps.

## Arguments
`num_envs`, `track` (name or .npy), `model_metadata` (path, dict or None = DRfC default),
`reward_function` (path, callable or None), `training`, `change_start_position`,
`round_robin_advance_dist`, `start_position_offset`, `alternate_driving_direction`,
`reverse_direction`, `autoreset_mode` (NEXT_STEP, SAME_STEP or DISABLED), `world` (appearance).

## Info
`params` (object array of per-car params dicts), `episode_status` (str), `progress` (float),
`steps` (float), `speed`/`steering_angle` (commanded), `action_label` (simtrace column),
`x`/`y`/`yaw` front point and heading of the judged pose, `sim_time`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from drlocal.config.model_metadata import ModelMetadata, load_model_metadata
from drlocal.env.actions import ActionMapper
from drlocal.env.observations import ObservationBuilder
from drlocal.errors import InvalidActionError
from drlocal.sim.episode import EpisodeOptions, StepResult, World
from drlocal.sim.race import HEAD_TO_MODEL, RaceOptions
from drlocal.sim.reward import RewardFunction, load_reward_function
from drlocal.tracks import Track, load_track


def _race_options(race: RaceOptions | None, race_type: str, settings: dict[str, Any]) -> RaceOptions:
    """RaceOptions from `race=` or from `race_type=` plus RaceOptions fields as keywords."""
    names = {f.name for f in fields(RaceOptions)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"unknown keyword(s) {', '.join(unknown)}; race settings are {', '.join(sorted(names))}")
    if race is not None:
        return replace(race, **settings) if settings else race
    return RaceOptions(race_type=race_type, **settings)


def object_boxes_of(world: World) -> np.ndarray | None:
    """Render primitives (N, M, cols) of the objects each car of `world` sees, None without objects."""
    objs = world.objects
    if not objs.k:
        return None
    from drlocal.sensors.objects_view import object_boxes

    return object_boxes(objs.xy, objs.yaw, objs.kinds)


def _coerce_autoreset(mode: AutoresetMode | str) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        return mode
    return AutoresetMode[str(mode).upper()] if str(mode).upper() in AutoresetMode.__members__ else AutoresetMode(mode)


class DeepRacerVectorEnv(VectorEnv):
    """N DeepRacer cars on one track; see the module docstring."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        num_envs: int = 1,
        track: str | Path | Track = "reinvent_base",
        model_metadata: str | Path | dict | ModelMetadata | None = None,
        reward_function: str | Path | Callable[[dict], Any] | RewardFunction | None = None,
        *,
        training: bool = True,
        change_start_position: bool | None = None,
        round_robin_advance_dist: float = 0.05,
        start_position_offset: float = 0.0,
        alternate_driving_direction: bool = False,
        reverse_direction: bool = False,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        world: str | None = None,
        render_mode: str | None = None,
        race_type: str = "TIME_TRIAL",
        race: RaceOptions | None = None,
        **race_settings: Any,
    ) -> None:
        self.num_envs = int(num_envs)
        self.track = track if isinstance(track, Track) else load_track(track)
        self.model_meta = (
            model_metadata if isinstance(model_metadata, ModelMetadata) else load_model_metadata(model_metadata)
        )
        self.reward_fn = (
            reward_function if isinstance(reward_function, RewardFunction) else load_reward_function(reward_function)
        )
        self.options = EpisodeOptions(
            training=training,
            change_start_position=change_start_position,
            round_robin_advance_dist=round_robin_advance_dist,
            start_position_offset=start_position_offset,
            alternate_driving_direction=alternate_driving_direction,
            reverse_direction=reverse_direction,
        )
        self.race = _race_options(race, race_type, race_settings)
        if self.race.race_type == HEAD_TO_MODEL and training:
            raise ValueError("race_type HEAD_TO_MODEL is a race of the env's cars against each other, for evaluation: "
                             "pass training=False (DeepRacer has no head-to-model training), or use `drlocal evaluate "
                             "--opponent PREFIX` to race two trained models")
        self.autoreset_mode = _coerce_autoreset(autoreset_mode)
        self.metadata = dict(self.metadata, autoreset_mode=self.autoreset_mode)
        self.render_mode = render_mode
        self.world_name = world or self.track.name
        self.actions = ActionMapper(self.model_meta)
        self.obs_builder = ObservationBuilder(self.model_meta, self.track, self.world_name)
        self.single_action_space = self.actions.space
        self.single_observation_space = self.obs_builder.space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._world: World | None = None
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._rng = np.random.default_rng()
        self._last_obs: Any = None

    # ----- helpers -----

    def _new_world(self) -> World:
        n = self.num_envs
        opts = self.options
        stride = n if opts.training and opts.round_robin else 1
        starts = opts.start_position_offset + (np.arange(n) * opts.round_robin_advance_dist if stride > 1 else 0.0)
        return World(self.track, n, self.reward_fn, opts, start_ndist=starts, advance_stride=stride, race=self.race,
                     stereo=self.model_meta.camera == "STEREO_CAMERAS")

    @property
    def world(self) -> World:
        if self._world is None:
            raise RuntimeError("call reset() before step()")
        return self._world

    def _observe(self) -> Any:
        w = self.world
        car = w.car
        return self.obs_builder.observe(car.x, car.y, car.yaw, rng=self._rng, boxes=object_boxes_of(w))

    def _info(self, res: StepResult | None, action_labels: list | None = None) -> dict[str, Any]:
        w = self.world
        if res is None:
            geo = w.geometry()
            params = np.empty(self.num_envs, dtype=object)
            for i in range(self.num_envs):
                params[i] = geo.params_dict(i, steps=w.steps[i])
            status = np.full(self.num_envs, "prepare", dtype=object)
            return {"params": params, "episode_status": status, "progress": geo.progress.copy(),
                    "steps": w.steps.copy()}
        params = np.empty(self.num_envs, dtype=object)
        params[:] = res.params
        g = res.geometry
        info = {
            "params": params,
            "episode_status": res.status.copy(),
            "progress": g.progress.copy(),
            "steps": res.steps.copy(),
            "speed": res.speed.copy(),
            "steering_angle": res.steering_angle.copy(),
            "x": g.x.copy(), "y": g.y.copy(), "yaw": g.heading.copy(),
            "all_wheels_on_track": g.all_wheels_on_track.copy(),
            "closest_waypoint": g.closest_waypoint.copy(),
            "sim_time": res.sim_time.copy(),
        }
        if res.obstacle_crash_counter is not None:
            info["obstacle_crash_counter"] = res.obstacle_crash_counter.copy()
            info["crashed_object"] = res.crashed_object.copy()
        if action_labels is not None:
            labels = np.empty(self.num_envs, dtype=object)
            labels[:] = action_labels
            info["action_label"] = labels
        return info

    # ----- Gymnasium API -----

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset all cars (or those in `options['reset_mask']`); `seed` makes sensor noise reproducible."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mask = None if options is None else options.get("reset_mask")
        if self._world is None or mask is None:
            self._world = self._new_world()
            self._autoreset[:] = False
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype.kind not in "biu":
                raise InvalidActionError(
                    f"options['reset_mask'] must be a boolean array of shape ({self.num_envs},), got "
                    f"{mask.dtype} of shape {mask.shape}.", hint="True for every car to reset.")
            mask = mask.astype(bool)
            self.world.reset(mask)
            self._autoreset[mask] = False
        obs = self._observe()
        self._last_obs = obs
        return obs, self._info(None)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        w = self.world
        acts = np.asarray(actions)
        speed, steer = self.actions.commands(acts, n=self.num_envs)  # InvalidActionError names what was expected
        labels = self.actions.labels(acts, speed, steer)
        active = np.ones(self.num_envs, dtype=bool)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset.any():
            w.reset(self._autoreset)
            active = ~self._autoreset
        elif self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset.any():
            raise RuntimeError("autoreset is disabled: reset the finished cars with reset(options={'reset_mask': ...})")
        res = w.step(speed, steer, active=active)
        truncated = res.truncated & active if res.truncated is not None else np.zeros(self.num_envs, dtype=bool)
        terminated = res.done & active & ~truncated
        reward = np.where(active, res.reward, 0.0)
        info = self._info(res, labels)
        if not active.all():
            info["episode_status"][~active] = "prepare"
            info["progress"][~active] = 0.0
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            final_obs = self._observe()
            w.reset(done)
            obs = self._observe()
            fo = np.empty(self.num_envs, dtype=object)
            fi = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(done):
                fo[i] = final_obs[i] if not isinstance(final_obs, dict) else {k: v[i] for k, v in final_obs.items()}
                fi[i] = {k: (v[i] if isinstance(v, np.ndarray) else v) for k, v in info.items()}
            info["final_obs"], info["_final_obs"] = fo, done.copy()
            info["final_info"], info["_final_info"] = fi, done.copy()
        else:
            obs = self._observe()
        self._autoreset = done.copy()
        self._last_obs = obs
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """Camera view of every car as RGB (N, 120, 160, 3) uint8 for render_mode 'rgb_array'."""
        if self.render_mode != "rgb_array" or self._world is None:
            return None
        car = self.world.car
        grey = self.obs_builder.camera.render(car.x, car.y, car.yaw, camera="front", boxes=object_boxes_of(self.world))
        return np.repeat(grey[..., None], 3, axis=-1)

    def close_extras(self, **kwargs: Any) -> None:
        self._world = None
