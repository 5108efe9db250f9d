"""Race types in the simulator: obstacle placement, bot motion, crashes, object params (contract §2, §3, §11).

Numbers come from the simapp's rules (obstacles_agent_ctrl.py, bot_cars_agent_ctrl.py, track_data.py,
rollout_agent_ctrl.py) worked by hand on reinvent_base (centre line 17.7092 m, start straight along +x).
"""

from __future__ import annotations

import numpy as np
import pytest

from drlocal import reward_params
from drlocal.sim.car import STEP_SECONDS
from drlocal.sim.episode import CRASHED, IN_PROGRESS, EpisodeOptions, World
from drlocal.sim.objects import FRUSTUM_HFOV, TrackObjects, bot_layout, lane_pose, obstacle_layout
from drlocal.sim.race import CAR_FOOTPRINT, RaceOptions, parse_object_positions
from drlocal.sim.reward import load_reward_function
from drlocal.tracks import load_track

DT = STEP_SECONDS


@pytest.fixture(scope="module")
def track():
    return load_track("reinvent_base")


# ----- placement -----


def test_linspace_placement_with_the_percent_quirk(track):
    L = track.forward.length
    race = RaceOptions(race_type="OBJECT_AVOIDANCE", number_of_obstacles=3, min_distance_between_obstacles=2.0)
    rng = np.random.default_rng(0)
    # a worker's first episode: converted at start-up and again at the first reset: 2 % · (L/100)²
    d, outer = obstacle_layout(L, race, rng, divisions=2)
    m = 2.0 * (L / 100.0) ** 2
    assert m == pytest.approx(0.062722, abs=1e-6)
    np.testing.assert_allclose(d, [m, (m + L - 1.0) / 2, L - 1.0])
    assert outer.tolist() == [False, True, False]  # inner, outer, inner
    d3, _ = obstacle_layout(L, race, rng, divisions=3)
    assert d3[0] == pytest.approx(m * L / 100.0)  # shrinks again at the next reset


def test_object_positions_override(track):
    L = track.forward.length
    pos = parse_object_positions("0.25,1; 0.6,-1")
    assert pos == ((0.25, 1), (0.6, -1))
    race = RaceOptions(race_type="OBJECT_AVOIDANCE", number_of_obstacles=6, object_positions=pos)
    assert race.n_obstacles == 2
    d, outer = obstacle_layout(L, race, np.random.default_rng(0))
    np.testing.assert_allclose(d, [0.25 * L, 0.6 * L])
    assert outer.tolist() == [False, True]
    with pytest.raises(ValueError):
        parse_object_positions("0.3;x")


def test_obstacles_sit_on_the_lane_centre(track):
    lines = track.forward
    xy, yaw = lane_pose(lines, np.array([1.0, 3.0]), np.array([False, True]))
    # on the start straight (heading +x) the lanes are a quarter of the width from the centre line
    centre = lines.interpolate(np.array([1.0, 3.0]))
    half = [np.hypot(*(lines.nearest_on("inner", centre[i:i + 1]) - centre[i])[0]) for i in range(2)]
    assert abs(xy[0, 1] - centre[0, 1]) == pytest.approx(half[0] / 2, abs=2e-3)  # inner = left (CCW track)
    assert xy[0, 1] > centre[0, 1] and xy[1, 1] < centre[1, 1]
    assert abs(yaw[0]) < 0.01


@pytest.mark.parametrize("seed", range(60))
def test_random_placement_respects_neighbour_bounds(track, seed):
    L = track.forward.length
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=5, min_distance_between_bot_cars=1.5,
                       randomize_bot_car_locations=True)
    d, outer = bot_layout(L, race, np.random.default_rng(seed))
    assert d[0] >= 1.5 - 1e-9 and d[-1] <= L - 1.0 + 1e-9
    assert np.all(np.diff(d) >= 1.5 - 1e-9)
    assert outer.dtype == bool


def test_first_episode_quirk_in_the_world(track):
    race = RaceOptions(race_type="OBJECT_AVOIDANCE", number_of_obstacles=2)
    w = World(track, 1, None, EpisodeOptions(training=True), race=race)
    L = track.forward.length
    first = w.objects.center_dist(0, 1)
    assert first == pytest.approx(L - 1.0, abs=0.02)
    d0 = w.objects.center_dist(0, 0)
    assert d0 == pytest.approx(2.0 * (L / 100) ** 2, abs=0.02)


# ----- bots -----


def _bot_world(track, **kw):
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=1, min_distance_between_bot_cars=2.0, **kw)
    return World(track, 1, None, EpisodeOptions(training=False), race=race)


def test_bot_moves_speed_times_run_time(track):
    w = _bot_world(track, bot_car_speed=0.2)
    lines = track.forward
    start = w.objects.xy[0, 0].copy()
    w.step(1.0, 0.0)  # PREPARE: the bot is still in its PREPARE phase
    np.testing.assert_array_equal(w.objects.xy[0, 0], start)
    for k in range(2, 32):
        w.step(0.0, 0.0)
        # at step k the bot is at its pose for the step's sim time (k - 1)·dt
        u = lines.project(w.objects.xy[0, 0][None, :], normalized=False)[0]
        assert u == pytest.approx(2.0 + 0.2 * (k - 1) * DT, abs=1e-3)


def test_lane_change_takes_distance_over_speed(track):
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=1, bot_car_speed=0.25, is_lane_change=True,
                       lower_lane_change_time=1.0, upper_lane_change_time=1.0, lane_change_distance=0.5)
    objs = TrackObjects(track, 1, race, np.random.default_rng(0))
    objs.place(np.ones(1, bool), np.zeros(1, bool), np.zeros(1, np.int64))
    lines = track.forward
    act = np.ones(1, bool)
    objs.judge(act, np.zeros(1, bool), DT)  # PREPARE -> RUN
    lateral = []
    times = np.arange(1, 58) * DT  # up to 3.8 s: the second change would start at 4.07 s
    for t in times:
        objs.send_action(act, np.array([t]))
        p = objs.xy[0, 0][None, :]
        c = lines.interpolate(lines.project(p, normalized=False))
        lateral.append(float(p[0, 1] - c[0, 1]))  # + = left (inner) on the start straight
        objs.judge(act, np.zeros(1, bool), DT)
    lateral = np.array(lateral)
    inner, outer = lateral[0], lateral[-1]
    assert inner > 0.1 and outer < -0.1  # from the inner lane to the outer lane
    # scheduled at the first RUN step t0 = dt: starts after 1.0 s, lasts 0.5 m / 0.25 m/s = 2.0 s
    t0 = DT
    moving = np.abs(np.diff(lateral)) > 1e-4
    t_move = times[1:][moving]
    assert t_move.min() == pytest.approx(t0 + 1.0, abs=DT + 1e-9)
    assert t_move.max() == pytest.approx(t0 + 3.0, abs=DT + 1e-9)


def test_rear_end_freezes_the_bots_for_penalty_seconds(track):
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=2, bot_car_speed=0.5, penalty_seconds=2.0)
    objs = TrackObjects(track, 1, race, np.random.default_rng(0))
    objs.place(np.ones(1, bool), np.zeros(1, bool), np.zeros(1, np.int64))
    act = np.ones(1, bool)
    objs.judge(act, np.zeros(1, bool), DT)
    t = DT
    objs.send_action(act, np.array([t]))
    objs.judge(act, np.array([True]), DT)  # a bot hit the agent from behind at t = dt
    frozen = objs.xy.copy()
    held = 0
    for step in range(2, 60):
        t = step * DT
        objs.send_action(act, np.array([t]))
        if np.array_equal(objs.xy, frozen):
            held += 1
        else:
            break
        objs.judge(act, np.zeros(1, bool), DT)
    assert held * DT == pytest.approx(2.0, abs=DT + 1e-9)  # 30 steps of 1/15 s
    # then they continue from where they stopped: distance = init + speed·(t - penalty)
    u = objs._bot_u(0, t)
    np.testing.assert_allclose(u, objs.bot_init[0] + 0.5 * (t - 2.0))


# ----- crashes -----


def test_crash_footprint_just_touching_and_just_clear(track):
    x0, y0 = track.waypoints[3]
    half = CAR_FOOTPRINT[0] / 2
    for eps, crashed in ((1e-3, True), (-1e-3, False)):
        x = x0 - 0.25 - half + eps  # the box is 0.5 m long: its rear face is 0.25 m behind its centre
        p = reward_params(track, x, y0, 0.0, objects=[(x0, y0)])
        assert p["is_crashed"] is crashed


def test_bot_car_crash_only_counts_from_behind(track):
    x0, y0 = track.waypoints[5]
    bot = {"x": x0, "y": y0, "type": "bot_car"}
    behind = reward_params(track, x0 - 0.3, y0, 0.0, objects=[bot])
    ahead = reward_params(track, x0 + 0.3, y0, 0.0, objects=[bot])
    assert behind["is_crashed"] is True
    assert ahead["is_crashed"] is False


def _oa_world(track, positions, **opts):
    race = RaceOptions(race_type="OBJECT_AVOIDANCE", object_positions=positions, seed=0)
    return World(track, 1, load_reward_function(None), EpisodeOptions(training=False, **opts), race=race)


def test_driving_into_a_box_ends_the_training_episode(track):
    L = track.forward.length
    w = _oa_world(track, ((1.5 / L, 1),))  # a box 1.5 m down the start straight on the inner lane
    # drive straight along the inner lane
    lines = track.forward
    xy, yaw = lane_pose(lines, np.array([0.2]), np.array([False]))
    w.car.place(np.ones(1, bool), xy[0, 0], xy[0, 1], yaw[0])
    statuses = []
    for _ in range(80):
        r = w.step(1.0, 0.0)
        statuses.append(r.status[0])
        if r.done[0]:
            break
    assert statuses[-1] == CRASHED and r.done[0]
    assert r.params[0]["is_crashed"] is True
    assert r.crashed_object[0] == 0


def test_evaluation_crash_pauses_and_replaces_behind_the_box(track):
    L = track.forward.length
    w = _oa_world(track, ((1.5 / L, 1),), number_of_resets=5, collision_penalty=5.0, continuous=True,
                  number_of_trials=1)
    lines = track.forward
    xy, yaw = lane_pose(lines, np.array([0.2]), np.array([False]))
    w.car.place(np.ones(1, bool), xy[0, 0], xy[0, 1], yaw[0])
    for _ in range(80):
        r = w.step(1.0, 0.0)
        if r.reset[0]:
            break
    assert r.status[0] == CRASHED and not r.done[0]
    assert r.pause_duration[0] == pytest.approx(5.0)
    # re-placed RESET_BEHIND_DIST (1 m) behind the box on the other (outer) lane
    box_d = w.objects.center_dist(0, 0)
    car_d = lines.project(np.array([[w.car.x[0], w.car.y[0]]]), normalized=False)[0]
    assert car_d == pytest.approx(box_d - 1.0, abs=0.03)
    assert w.car.y[0] < lines.interpolate(np.array([car_d]))[0, 1]  # outer lane = right of the centre line
    paused = 0
    while True:
        r = w.step(1.0, 0.0)
        if r.status[0] != "pause":
            break
        paused += 1
    assert paused == 75  # 5 s of 1/15 s steps


def test_mercy_reset_after_three_crashes(track):
    L = track.forward.length
    race = RaceOptions(race_type="OBJECT_AVOIDANCE", object_positions=((3.0 / L, 1),), enable_mercy_reset=True)
    w = World(track, 1, None, EpisodeOptions(training=False, number_of_resets=10), race=race)
    counters = []
    for _ in range(3):
        w._replace(0, 100.0 * 2.6 / L, np.array([0.0, 0.0]))  # an off-track reset 0.4 m behind the box
        counters.append(int(w.obstacle_crash_counter[0]))
        car_d = track.forward.project(np.array([[w.car.x[0], w.car.y[0]]]), normalized=False)[0]
    assert counters == [1, 2, 0]
    assert car_d == pytest.approx(w.objects.center_dist(0, 0) + 1.0, abs=0.03)  # third time: 1 m ahead


# ----- params -----


def test_object_params_on_hand_placed_objects(track):
    x0, y0 = track.waypoints[0]  # start straight, heading +x, centre line y ≈ y0
    objs = [(x0 + 1.0, y0 + 0.15), (x0 + 3.0, y0 - 0.2), (x0 - 0.8, y0 - 0.15)]
    p = reward_params(track, x0, y0, 0.0, objects=objs)
    L = track.forward.length
    assert p["objects_location"] == [[x0 + 1.0, y0 + 0.15], [x0 + 3.0, y0 - 0.2], [x0 - 0.8, y0 - 0.15]]
    np.testing.assert_allclose(p["objects_distance"], [1.0, 3.0, L - 0.8], atol=0.01)
    np.testing.assert_allclose(p["objects_distance_from_center"], [0.15, 0.2, 0.15], atol=0.015)  # curve behind
    assert p["objects_left_of_center"] == [True, False, False]  # reinvent_base is CCW: inner = left
    # the car front is at 0.14 m: prev = the box behind the line (wrap), next = the box at 1 m
    assert p["closest_objects"] == [2, 0]
    assert p["objects_speed"] == [0.0, 0.0, 0.0] and p["objects_heading"] == [0.0, 0.0, 0.0]


def test_bot_speed_and_heading_in_radians(track):
    x0, y0 = track.waypoints[0]
    p = reward_params(track, x0, y0, 0.0, objects=[{"x": x0 + 2, "y": y0, "heading": 90.0, "type": "bot_car",
                                                    "speed": 0.4}])
    assert p["objects_speed"] == [0.4]
    assert p["objects_heading"][0] == pytest.approx(np.pi / 2)


def test_object_in_camera_just_inside_and_just_outside(track):
    """The simapp compares the next object's index with the index of the frustum hits counted over all objects,
    the agent itself first: it reports whether the object listed *before* the next one is in view."""
    x0, y0 = track.waypoints[0]
    cam_x = x0 + 0.14529379
    near = (x0 + 0.8, y0)  # object 1, the next one, straight ahead
    depth = 2.5
    half = FRUSTUM_HFOV / 2
    results = {}
    for name, angle in (("inside", half - 0.05), ("outside", half + 0.05)):
        # object 0 far ahead-left with its whole footprint near the edge of the horizontal field of view
        far = (cam_x + depth, y0 + depth * np.tan(angle) + 0.2)
        results[name] = reward_params(track, x0, y0, 0.0, objects=[far, near])
        assert results[name]["closest_objects"][1] == 1
    assert results["inside"]["object_in_camera"] is True
    assert results["outside"]["object_in_camera"] is False
    # the next object alone, in full view: object 0 is the agent's own slot in the simapp's list -> False
    assert reward_params(track, x0, y0, 0.0, objects=[near])["object_in_camera"] is False


def test_closest_objects_around_the_lap_wrap(track):
    L = track.forward.length
    lines = track.forward
    xy, _ = lane_pose(lines, np.array([L - 0.5, 0.5, 8.0]), np.array([False, False, False]))
    end = lines.interpolate(np.array([L - 0.2]))[0]
    # the car front just before the line: prev = the object at L-0.5, next = the object at 0.5 (after the wrap)
    base = end - np.array([0.14, 0.0])
    p = reward_params(track, base[0], base[1], 0.0, objects=[tuple(v) for v in xy])
    assert p["closest_objects"] == [0, 1]


def test_head_to_bot_episode_statuses(track):
    """A car parked on a bot's lane: the bot drives into it from behind -> the agent is not crashed
    (in_progress), and every bot freezes for PENALTY_SECONDS."""
    race = RaceOptions(race_type="HEAD_TO_BOT", number_of_bot_cars=1, bot_car_speed=1.0, penalty_seconds=1.0)
    w = World(track, 1, None, EpisodeOptions(training=False), race=race)
    lines = track.forward
    d0 = w.objects.bot_init[0, 0]
    xy, yaw = lane_pose(lines, np.array([d0 + 0.45]), np.array([bool(w.objects.bot_outer[0, 0])]))
    w.car.place(np.ones(1, bool), xy[0, 0], xy[0, 1], yaw[0])
    seen = []
    for _ in range(12):
        r = w.step(0.1, 0.0)
        seen.append((r.status[0], int(r.crashed_object[0])))
    hits = [s for s in seen if s[1] == 0]
    assert hits and all(s[0] == IN_PROGRESS for s in hits)
    assert w.objects.bot_crashes[0] >= 1
