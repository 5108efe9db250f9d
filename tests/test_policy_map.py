"""`drlocal analyze --policy-map`: the pose grid's geometry, hand-made policies through the real code path, the
comparison of two checkpoints and the command on a tiny real run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import rectangle_route
from drlocal.analysis import policy_map as pm
from drlocal.config.model_metadata import load_model_metadata
from drlocal.errors import DrlocalError
from drlocal.learn.networks import PPOActorCritic
from drlocal.tracks import load_track
from drlocal.tracks.track import Track

ACTIONS = [(-10.0, 2.5), (0.0, 1.0), (10.0, 1.0), (25.0, 0.5)]  # (steering [deg], speed [m/s]); action 0 is unique


def discrete_metadata():
    return load_model_metadata({
        "action_space": [{"steering_angle": s, "speed": v} for s, v in ACTIONS],
        "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo", "action_space_type": "discrete", "version": "5"})


def continuous_metadata():
    return load_model_metadata({
        "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 3.5}},
        "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo", "action_space_type": "continuous", "version": "5"})


def always(md, bias: list[float], log_std: list[float] | None = None) -> pm.MapPolicy:
    """A PPO network whose policy head ignores the image: softmax(bias) (discrete) or mean = bias (continuous)."""
    torch.manual_seed(0)
    model = PPOActorCritic(md.input_sizes(), md.neural_network, len(bias), md.is_continuous)
    with torch.no_grad():
        model.policy_head.weight.zero_()
        model.policy_head.bias.copy_(torch.tensor(bias))
        if log_std is not None:
            model.log_std.copy_(torch.tensor(log_std))
    return pm.MapPolicy(f"always{bias}", md, model.eval())


@pytest.fixture(scope="module")
def track() -> Track:
    return load_track("reinvent_base")


@pytest.fixture(scope="module")
def grid(track: Track) -> pm.PoseGrid:
    return pm.pose_grid(track, stride=12)  # 10 waypoints × 3 offsets × 3 headings: cheap on a CPU


# ----- the grid -----

@pytest.mark.parametrize("reverse", [False, True])
def test_grid_poses_lie_on_the_lateral_normal_of_their_waypoint(reverse: bool) -> None:
    """Waypoint i, offset d, heading h → the waypoint + d × (left normal of the direction to the next distinct
    waypoint), yaw = that direction + h; the duplicate waypoint of the route is handled as the simapp does."""
    track = Track.from_array("rectangle", rectangle_route(duplicate_at=3))
    offsets, headings = (-0.2, 0.0, 0.25), (-30.0, 0.0, 10.0)
    g = pm.pose_grid(track, reverse=reverse, stride=3, offsets=offsets, headings=headings)
    center = track.lines(reverse).center
    assert g.waypoints == tuple(range(0, len(center) - 1, 3))
    assert g.shape == (len(g.waypoints), 3, 3) and g.n == np.prod(g.shape)
    for k in range(g.n):
        i, d, h = int(g.waypoint[k]), float(g.offset[k]), float(g.heading[k])
        j = i + 1
        while np.array_equal(center[j], center[i]):
            j += 1
        t = (center[j] - center[i]) / np.linalg.norm(center[j] - center[i])
        left = np.array([-t[1], t[0]])
        assert np.allclose([g.x[k], g.y[k]], center[i] + d * left, atol=1e-9)
        want = math.atan2(t[1], t[0]) + math.radians(h)
        assert math.isclose(math.cos(g.yaw[k] - want), 1.0, abs_tol=1e-12)
    w, o, h = (a.reshape(g.shape) for a in (g.waypoint, g.offset, g.heading))
    assert (w[:, 0, 0] == g.waypoints).all() and (o[0, :, 0] == offsets).all() and (h[0, 0, :] == headings).all()
    assert g.on_track.all()  # ±0.25 m on a 0.6 m wide road
    # waypoint 0 is the corner (0, 0): forwards the car heads +x (counter-clockwise) and + offsets go inside the
    # rectangle (+y); reversed it heads +y and + offsets go outside (−x)
    first = (g.waypoint == 0) & (g.offset == 0.25)
    assert np.allclose(np.stack([g.x[first], g.y[first]], 1), (-0.25, 0.0) if reverse else (0.0, 0.25))


def test_grid_flags_poses_off_the_road_and_rejects_bad_values(track: Track) -> None:
    g = pm.pose_grid(track, stride=20, offsets=(0.0, 1.5), headings=(0.0,))
    assert g.on_track[g.offset == 0].all() and not g.on_track[g.offset == 1.5].any()
    assert pm.parse_floats("-0.3, 0,0.3", "--offsets", "metres") == (-0.3, 0.0, 0.3)
    for bad in ("a,b", "", "1,1", "nan"):
        with pytest.raises(DrlocalError, match="--offsets"):
            pm.parse_floats(bad, "--offsets", "metres")
    with pytest.raises(DrlocalError, match="--stride"):
        pm.pose_grid(track, stride=0)
    with pytest.raises(DrlocalError, match="--headings"):
        pm.pose_grid(track, headings=(0.0, 180.0))


# ----- hand-made policies -----

def test_a_policy_that_always_picks_action_0_maps_uniformly(track: Track, grid: pm.PoseGrid, tmp_path: Path) -> None:
    md = discrete_metadata()
    (m,) = pm.compute_policy_maps([always(md, [30.0, 0.0, 0.0, 0.0])], track, grid, batch=40)
    assert m.action.shape == (grid.n,) and (m.action == 0).all()
    assert (m.speed == 2.5).all() and (m.steering == -10.0).all()
    # ~0: the probabilities are clamped at 1e-8 as in training, so 3 × 1e-8 × ln 1e8 ≈ 5.5e-7 remains
    assert np.allclose(m.p_greedy, 1.0) and m.entropy.max() < 1e-6 and np.ptp(m.entropy) < 1e-9
    assert m.max_entropy == pytest.approx(math.log(4))
    assert np.isfinite(m.value).all() and np.ptp(m.value) > 0  # the value tower does look at the images
    # a uniform policy is the other end of the entropy scale (argmax of equal probabilities: action 0)
    (u,) = pm.compute_policy_maps([always(md, [0.0, 0.0, 0.0, 0.0])], track, grid)
    assert np.allclose(u.entropy, math.log(4)) and np.allclose(u.p_greedy, 0.25)
    page = pm.write_policy_map(tmp_path, m, track, model="hand-made")
    assert page.name == "policy-map.html"
    for q in ("speed", "steering", "entropy", "value"):
        png = tmp_path / f"policy-map-{q}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"policy-map-{q}.png" in page.read_text()
    assert "0 (-10°, 2.5 m/s): 100 %" in page.read_text()


def test_continuous_greedy_is_the_mean_clipped_as_deepracer_clips(track: Track, grid: pm.PoseGrid) -> None:
    md = continuous_metadata()
    (m,) = pm.compute_policy_maps([always(md, [2.0, -0.5], log_std=[-1.0, -2.0])], track, grid)
    assert m.action.shape == (grid.n, 2) and np.allclose(m.action, [1.0, -0.5])  # steering clipped to +1
    assert np.allclose(m.steering, 30.0) and np.allclose(m.speed, 0.5 + 0.25 * 3.0)
    want = 2 * 0.5 * math.log(2 * math.pi * math.e) - 3.0  # Σ ½ ln(2πe σ²), σ = e⁻¹, e⁻²
    assert np.allclose(m.entropy, want) and m.max_entropy is None and np.isnan(m.p_greedy).all()


def test_sac_greedy_is_tanh_of_the_mean_with_its_own_value_network(track: Track, grid: pm.PoseGrid) -> None:
    from drlocal.learn.sac import SACPolicy, ValueNet

    md = continuous_metadata().model_copy(update={"training_algorithm": "sac"})
    torch.manual_seed(0)
    policy, value = SACPolicy(md.input_sizes(), md.neural_network), ValueNet(md.input_sizes(), md.neural_network)
    with torch.no_grad():
        for layer, bias in ((policy.mean, [0.5, -0.2]), (policy.log_std, [-1.0, -1.0])):
            layer.weight.zero_()
            layer.bias.copy_(torch.tensor(bias))
    (m,) = pm.compute_policy_maps([pm.MapPolicy("sac", md, policy.eval(), value.eval())], track, grid)
    assert np.allclose(m.action, np.tanh([0.5, -0.2]), atol=1e-6)
    assert np.allclose(m.steering, 30.0 * math.tanh(0.5), atol=1e-4)
    assert np.allclose(m.speed, 0.5 + (math.tanh(-0.2) + 1.0) / 2 * 3.0, atol=1e-4)
    assert np.allclose(m.entropy, math.log(2 * math.pi * math.e) - 2.0) and np.isfinite(m.value).all()
    (no_v,) = pm.compute_policy_maps([pm.MapPolicy("sac", md, policy.eval())], track, grid)
    assert np.isnan(no_v.value).all()


def test_compare_a_checkpoint_with_itself_and_with_another(track: Track, grid: pm.PoseGrid, tmp_path: Path) -> None:
    md = discrete_metadata()
    a, b = always(md, [30.0, 0, 0, 0]), always(md, [0, 30.0, 0, 0])
    ma, ma2, mb = pm.compute_policy_maps([a, a, b], track, grid)  # one render for the three
    same = pm.compare_maps(ma, ma2)
    for v in (same.speed, same.steering, same.entropy, same.value):
        assert (v == 0).all()
    assert same.share_changed == 0.0 and not same.changed.any()
    diff = pm.compare_maps(ma, mb)
    assert diff.share_changed == 1.0 and np.allclose(diff.speed, -1.5) and np.allclose(diff.steering, 10.0)
    page = pm.write_compare(tmp_path, same, track, model="hand-made")
    assert "0.0 % of the poses" in page.read_text()
    assert {p.name for p in tmp_path.glob("*.png")} == {
        f"policy-map-compare-{q}.png" for q in ("speed", "steering", "entropy", "value", "changed")}
    with pytest.raises(ValueError, match="different pose grids"):
        other = pm.compute_policy_maps([a], track, pm.pose_grid(track, stride=30))[0]
        pm.compare_maps(ma, other)


# ----- the command on a tiny real run -----

@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from drlocal.config.workdir import load_job
    from drlocal.learn.trainer import Trainer
    from test_train import small_job

    root = small_job(tmp_path_factory.mktemp("run"))
    Trainer(load_job(root, environ={}), max_iterations=1, seed=1).train()
    return root


def test_cli_writes_the_policy_map(run: Path) -> None:
    from test_cli import drlocal

    r = drlocal("analyze", "--policy-map", "--stride", "12", "--offsets", "-0.2,0.2", cwd=run)
    assert r.returncode == 0, r.stdout + r.stderr
    report = run / "data" / "bucket" / "rl-deepracer-sagemaker" / "report"
    assert r.stdout.startswith("policy map: ") and "policy-map.html" in r.stdout
    for q in ("speed", "steering", "entropy", "value"):
        assert (report / f"policy-map-{q}.png").stat().st_size > 10_000
    page = (report / "policy-map.html").read_text()
    best = json.loads((report.parent / "model" / "deepracer_checkpoints.json").read_text())["best_checkpoint"]["name"]
    assert "-0.2, 0.2" in page and f"checkpoint {best}" in page  # the offsets given, and the default: best


def test_cli_compare_a_checkpoint_with_itself(run: Path, tmp_path: Path) -> None:
    from test_cli import drlocal

    r = drlocal("analyze", "--compare", "last", "1", "--stride", "20", "--out", str(tmp_path), cwd=run)
    assert r.returncode == 0, r.stdout + r.stderr
    page = (tmp_path / "policy-map-compare.html").read_text()
    assert "0.0 % of the poses" in page and "max |Δ| 0.000" in page
    assert (tmp_path / "policy-map-compare-changed.png").is_file()


def test_cli_one_line_errors(run: Path) -> None:
    from test_cli import assert_input_error, drlocal

    assert_input_error(drlocal("analyze", "--policy-map", "--checkpoint", "7", cwd=run), "no checkpoint 7", "have 0, 1")
    assert_input_error(drlocal("analyze", "--policy-map", "--prefix", "nope", cwd=run), "no model 'nope'",
                       "no checkpoints to map", "rl-deepracer-sagemaker")
