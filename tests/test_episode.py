"""Episode logic of the World (contract §1, §3): PREPARE, timing, terminations, starts, directions."""

from __future__ import annotations

import numpy as np
import pytest

from drlocal import load_track
from drlocal.sim.episode import (
    IMMOBILIZED,
    IN_PROGRESS,
    LAP_COMPLETE,
    OFF_TRACK,
    PREPARE,
    REVERSED,
    EpisodeOptions,
    World,
)
from drlocal.sim.reward import RewardFunctionError, load_reward_function
from drlocal.tracks.track import Track


class Recorder:
    """A reward function that records every params dict it is called with."""

    def __init__(self, value: float = 1.0) -> None:
        self.calls: list[dict] = []
        self.value = value

    def __call__(self, params: dict) -> float:
        self.calls.append(params)
        return self.value


def test_prepare_step_holds_car_and_skips_reward() -> None:
    rec = Recorder()
    w = World(load_track("reinvent_base"), 2, load_reward_function(rec))
    x0, y0 = w.car.x.copy(), w.car.y.copy()
    r = w.step(np.full(2, 4.0), np.zeros(2))
    assert list(r.status) == [PREPARE, PREPARE]
    assert r.reward.tolist() == [0.0, 0.0] and not r.done.any()
    assert rec.calls == []
    assert np.array_equal(w.car.x, x0) and np.array_equal(w.car.y, y0)  # action not executed
    assert r.progress[0] == pytest.approx(0.79, abs=0.01)
    r = w.step(np.full(2, 1.5), np.array([10.0, -10.0]))
    assert [c["steps"] for c in rec.calls] == [2.0, 2.0]
    assert rec.calls[0]["speed"] == 1.5 and rec.calls[1]["steering_angle"] == -10.0
    assert list(r.status) == [IN_PROGRESS, IN_PROGRESS] and r.reward.tolist() == [1.0, 1.0]
    # the pose judged at step 2 is still the start pose: the step-2 action acts afterwards
    assert rec.calls[0]["x"] == pytest.approx(x0[0] + 0.14 * np.cos(w.start_poses(np.array([True, False]))[1][0]))
    assert w.car.x[0] != x0[0]


def test_off_track_is_detected_one_step_late() -> None:
    t = load_track("reinvent_base")
    w = World(t, 1, load_reward_function(Recorder()))
    w.step(1.0, 0.0)
    history = []
    for _ in range(200):
        r = w.step(2.0, -30.0)  # hard right on a CCW track: leaves the road to the outside
        off_after = not t.on_track(w.car.wheel_centres()).any()
        history.append((r.status[0], off_after))
        if r.done[0]:
            break
    assert history[-1][0] == OFF_TRACK
    # the physics of the step before already put every wheel off the road, but that step was in_progress
    assert history[-2] == (IN_PROGRESS, True)
    assert all(s == IN_PROGRESS for s, _ in history[:-1])


def test_terminal_step_calls_reward_function() -> None:
    rec = Recorder(value=-3.0)
    w = World(load_track("reinvent_base"), 1, load_reward_function(rec))
    for _ in range(300):
        r = w.step(2.0, -30.0)
        if r.done[0]:
            break
    assert r.status[0] == OFF_TRACK and r.reward[0] == -3.0
    assert rec.calls[-1]["is_offtrack"] is True


def _place(w: World, i: int, x: float, y: float, yaw: float) -> None:
    mask = np.zeros(w.n, dtype=bool)
    mask[i] = True
    w.car.place(mask, x, y, yaw)
    w.prev_xy[i] = (x, y)


def test_lap_complete_wins_over_off_track(circle: Track) -> None:
    w = World(circle, 1, load_reward_function(Recorder()))
    w.step(1.0, 0.0)  # PREPARE
    w.step(1.0, 0.0)
    # Teleport just past the start line, with every wheel off the road (outside the circle),
    # after a step that had 99.5 % progress: lap_complete has priority over off_track.
    _place(w, 0, 2.6, 0.01, np.pi / 2)
    w.prev_progress[:] = 99.5
    r = w.step(1.0, 0.0)
    assert r.geometry.is_offtrack[0] and r.progress[0] == 100.0
    assert r.status[0] == LAP_COMPLETE and r.done[0]


def test_reversed_after_15_steps_of_falling_progress(rectangle: Track) -> None:
    w = World(rectangle, 1, load_reward_function(Recorder()), EpisodeOptions(start_position_offset=0.25))
    _place(w, 0, 3.0, 0.0, np.pi)  # on the bottom straight, facing against the track direction
    statuses, progress = [], []
    for _ in range(40):
        r = w.step(0.5, 0.0)
        statuses.append(r.status[0])
        progress.append(r.progress[0])
        if r.done[0]:
            break
    first_drop = next(i for i in range(1, len(progress)) if progress[i] < progress[i - 1])
    assert statuses[-1] == REVERSED
    assert len(statuses) - 1 == first_drop + 14  # the 15th consecutive falling step ends it
    assert all(s in (PREPARE, IN_PROGRESS) for s in statuses[:-1])


def test_immobilized_after_15_still_steps(rectangle: Track) -> None:
    # 0.1 m/s (the minimum speed) moves at most 6.7 mm per step; with a 1 cm threshold the car counts as still.
    opts = EpisodeOptions(immobilized_dist=0.01)
    w = World(rectangle, 1, load_reward_function(Recorder()), opts)
    statuses = [w.step(0.0, 0.0).status[0] for _ in range(16)]
    assert statuses[0] == PREPARE
    assert statuses[1:15] == [IN_PROGRESS] * 14
    assert statuses[15] == IMMOBILIZED  # steps 2..16: 15 consecutive still RUN steps


def test_round_robin_start_advances_only_in_training() -> None:
    t = load_track("reinvent_base")
    train = World(t, 1, load_reward_function(Recorder()))
    evaluate = World(t, 1, load_reward_function(Recorder()), EpisodeOptions(training=False))
    for w in (train, evaluate):
        for _ in range(3):
            w.step(1.0, 0.0)
            w.step(1.0, 0.0)
            w.needs_advance[:] = w.options.training  # as after a finished episode
            w.reset(np.array([True]))
    assert train.start_ndist[0] == pytest.approx(0.15)
    assert evaluate.start_ndist[0] == 0.0
    # the start pose follows start_ndist, and progress is measured from it
    r = train.step(1.0, 0.0)
    assert r.progress[0] == pytest.approx(0.14 / t.length * 100, abs=0.02)
    assert r.geometry.ndist[0] == pytest.approx(0.15 + 0.14 / t.length, abs=2e-4)
    assert train.episode[0] == 3


def test_start_offset_and_reverse_direction() -> None:
    t = load_track("reinvent_base")
    opts = EpisodeOptions(start_position_offset=0.5, reverse_direction=True)
    rec = Recorder()
    w = World(t, 1, load_reward_function(rec), opts)
    r = w.step(1.0, 0.0)
    assert r.geometry.reversed[0]
    assert r.progress[0] == pytest.approx(0.79, abs=0.01)
    w.step(1.0, 0.0)
    p = rec.calls[0]
    assert p["is_reversed"] is True
    assert p["waypoints"][0] == pytest.approx(tuple(t.waypoints[-1]))
    assert p["waypoints"][1] == pytest.approx(tuple(t.waypoints[-2]))


def test_alternate_direction_flips_each_training_episode() -> None:
    opts = EpisodeOptions(alternate_driving_direction=True)
    w = World(load_track("reinvent_base"), 1, load_reward_function(Recorder()), opts)
    seen = []
    for _ in range(3):
        seen.append(bool(w.reverse[0]))
        w.needs_advance[:] = True
        w.reset()
    assert seen == [False, True, False]


def test_episode_ends_and_resets_per_car() -> None:
    t = load_track("reinvent_base")
    w = World(t, 3, load_reward_function(Recorder()))
    steer = np.array([0.0, -30.0, 0.0])
    ended = np.zeros(3, dtype=bool)
    for _ in range(200):
        r = w.step(np.full(3, 2.0), steer)
        ended |= r.done
        if r.done[1]:
            w.reset(r.done)
            break
    assert ended.tolist() == [False, True, False]
    assert w.steps.tolist()[1] == 0.0 and w.steps[0] > 5
    assert w.start_ndist[1] == pytest.approx(0.05) and w.start_ndist[0] == 0.0
    assert w.step(np.full(3, 2.0), steer).status[1] == PREPARE


def test_bad_reward_value_stops_with_clear_error() -> None:
    w = World(load_track("reinvent_base"), 1, load_reward_function(lambda p: float("nan")))
    w.step(1.0, 0.0)
    with pytest.raises(RewardFunctionError, match=r"nan.*finite.*\n  params: x="):
        w.step(1.0, 0.0)
