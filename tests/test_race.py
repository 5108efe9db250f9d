"""Offline races (`drlocal race`) and sweeps (`drlocal sweep`) run in this process, without Ray."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drlocal.config.workdir import init_workdir, load_job
from drlocal.errors import DrlocalError
from drlocal.learn.evaluate import evaluate
from drlocal.learn.leaderboard import COLUMNS, Entry, Leaderboard
from drlocal.learn.sweep import load_spec, plan_variants, run_sweep, run_variant
from drlocal.learn.trainer import Trainer

PREFIX = "rl-deepracer-sagemaker"
BAD_REWARD = "def reward_function(params):\n    return 1 / 0\n"


def _small(root: Path) -> Path:
    init_workdir(root)
    hp_path = root / "custom_files" / "hyperparameters.json"
    hp = json.loads(hp_path.read_text())
    hp.update({"num_episodes_between_training": 3, "num_epochs": 1})
    hp_path.write_text(json.dumps(hp))
    with (root / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=1\nDR_EVAL_MAX_RESETS=2\n")  # an untrained car's race ends soon
    return root


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "drlocal"
    return subprocess.run([str(exe), *args], cwd=root, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(root)})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _small(tmp_path_factory.mktemp("race"))
    Trainer(load_job(root, environ={}), max_iterations=2, seed=3).train()
    # the same model under a second prefix: identical conditions must give identical laps
    bucket = root / "data" / "bucket"
    shutil.copytree(bucket / PREFIX, bucket / "twin")
    return root


def test_an_offline_race_ranks_models_raced_under_identical_conditions(trained: Path) -> None:
    r = _cli(trained, "race", f"{PREFIX}:1", "twin:1", f"{PREFIX}:0", "nobody", "--laps", "2", "--out",
             str(trained / "board"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((trained / "board.csv").open()))
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    mine = next(row for row in rows if row["model"] == PREFIX and row["checkpoint"].startswith("1_"))
    twin = next(row for row in rows if row["model"] == "twin")
    for col in ("laps", "avg_lap_s", "best_lap_s", "total_s", "progress_pct", "resets", "off_track"):
        assert mine[col] == twin[col], col
    # the race is `drlocal evaluate` of each model: the same laps to the millisecond
    res = evaluate(load_job(trained, environ={}), checkpoint=1, trials=2, continuous=True, prefix="twin")
    ref = Entry.from_laps("twin", res.checkpoint, res.laps, trials=2)
    assert float(twin["total_s"]) == pytest.approx(ref.total_s, abs=1e-3)
    assert twin["laps"] == f"{ref.laps}/2" and int(twin["resets"]) == ref.resets
    # ranking: errors last, then more laps, then the lower average, then more progress
    nobody = rows[-1]
    assert nobody["model"] == "nobody" and nobody["rank"] == "-" and "no checkpoints" in nobody["error"]
    ranked = [Entry(model=x["model"], laps=int(x["laps"].split("/")[0]),
                    avg_lap_s=float(x["avg_lap_s"]) if x["avg_lap_s"] != "-" else float("nan"),
                    progress_pct=float(x["progress_pct"])) for x in rows[:-1]]
    assert [e.sort_key() for e in ranked] == sorted(e.sort_key() for e in ranked)
    assert [x["rank"] for x in rows[:-1]] == ["1", "2", "3"]
    board = json.loads((trained / "board.json").read_text())
    assert board["track"] == "reinvent_base" and board["laps"] == 2 and len(board["entries"]) == 4
    assert "leaderboard" in r.stdout and "nobody: cannot race" in r.stdout


def test_race_input_errors_are_one_message(trained: Path) -> None:
    for args, fragment in ((["nobody"], "no model could race"), (["twin", "--track", "atlantis"], "atlantis"),
                           (["twin", "twin:best"], "model given twice"), (["twin", "--laps", "0"], "--laps 0")):
        r = _cli(trained, "race", *args)
        assert r.returncode == 1 and fragment in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_leaderboard_ranks_completion_then_average_lap() -> None:
    board = Leaderboard("t", 3, [
        Entry("slow", laps=3, trials=3, avg_lap_s=9.0, progress_pct=100),
        Entry("broken", error="no checkpoints"),
        Entry("fast-but-2", laps=2, trials=3, avg_lap_s=7.0, progress_pct=80),
        Entry("fast", laps=3, trials=3, avg_lap_s=8.0, progress_pct=100),
        Entry("none", laps=0, trials=3, progress_pct=40),
        Entry("none-more", laps=0, trials=3, progress_pct=60),
    ])
    assert [e.model for e in board.ranked()] == ["fast", "slow", "fast-but-2", "none-more", "none", "broken"]
    assert [r["rank"] for r in board.rows()] == [1, 2, 3, 4, 5, "-"]


def _sweep_folder(root: Path, spec: str) -> Path:
    _small(root)
    (root / "rewards").mkdir()
    (root / "rewards" / "bad.py").write_text(BAD_REWARD)
    shutil.copy(root / "custom_files" / "reward_function.py", root / "rewards" / "good.py")
    (root / "sweep.yaml").write_text(spec)
    return root


SPEC = """\
name: t
budget: {iterations: 1}
parallel: 1
seed: 2
race: {laps: 1}
vary:
  hyperparameters.discount_factor: [0.9, 0.99]
  reward_function: [rewards/good.py, rewards/bad.py]
"""


def test_a_sweep_trains_every_variant_isolates_failures_and_resumes(tmp_path: Path) -> None:
    root = _sweep_folder(tmp_path, SPEC)
    said: list[str] = []
    run = run_sweep(root / "sweep.yaml", say=said.append)
    # grid in the spec's key order: (0.9, good), (0.9, bad), (0.99, good), (0.99, bad)
    exp = root / "experiments"
    hp = [json.loads((exp / f"t-{k}" / "custom_files" / "hyperparameters.json").read_text()) for k in (1, 2, 3, 4)]
    assert [h["discount_factor"] for h in hp] == [0.9, 0.9, 0.99, 0.99]
    assert (exp / "t-2" / "custom_files" / "reward_function.py").read_text() == BAD_REWARD
    assert "DR_LOCAL_S3_MODEL_PREFIX=t-3" in (exp / "t-3" / "run.env").read_text()
    job = load_job(root, environ={}, experiment="t-3")
    assert job.run.model_prefix == "t-3" and job.hyperparameters.discount_factor == 0.99
    assert run.failed == 2 and run.skipped == 0
    board = {e.model: e for e in run.board.entries}
    assert {m for m, e in board.items() if e.error} == {"t-2", "t-4"}
    assert "ZeroDivisionError" in board["t-2"].error
    for ok in ("t-1", "t-3"):
        assert board[ok].trials == 1
        assert (root / "data" / "bucket" / ok / "model" / "deepracer_checkpoints.json").is_file()
        assert json.loads((exp / ok / "sweep-result.json").read_text())["iterations"] == 1
    rows = list(csv.DictReader(run.csv_path.open()))
    assert [r["rank"] for r in rows][-2:] == ["-", "-"]
    assert {r["variant"]: r["reward_function"] for r in rows}["t-4"] == "rewards/bad.py"
    # the failed variants' reward is fixed: a second run keeps the two finished variants and retrains the others
    (root / "rewards" / "bad.py").write_text((root / "rewards" / "good.py").read_text())
    run2 = run_sweep(root / "sweep.yaml", say=said.append)
    assert run2.skipped == 2 and run2.failed == 0
    assert {e.model: (e.total_s, e.progress_pct) for e in run2.board.entries if e.model in ("t-1", "t-3")} == \
        {m: (board[m].total_s, board[m].progress_pct) for m in ("t-1", "t-3")}
    assert "NaN" not in (root / "experiments" / "t-1" / "sweep-result.json").read_text()
    # the same spec name with other settings is refused; --restart trains again
    (root / "other.yaml").write_text(SPEC.replace("0.99]", "0.95]"))
    with pytest.raises(DrlocalError, match="another version"):
        run_sweep(root / "other.yaml")


def test_a_variant_on_another_machine_sends_its_model_back(tmp_path: Path) -> None:
    """A task whose driver is elsewhere rebuilds the folder from the files it carries and returns the prefix."""
    import io
    import tarfile

    root = _sweep_folder(tmp_path, SPEC)
    spec = load_spec(root / "sweep.yaml")
    v = plan_variants(spec)[0]
    from drlocal.learn.sweep import variant_files

    files = variant_files(load_job(root, environ={}), v, root)
    task = {"base": str(tmp_path / "not-here"), "experiment": v.name, "files": files,
            "system_env": (root / "system.env").read_text(), "environ": {}, "host": "another-machine",
            "budget": {"iterations": 1, "minutes": None}, "seed": 2, "race": {"track": None, "laps": 1,
                                                                             "checkpoint": "best"},
            "threads": 1, "resume": False, "trained_s": 0.0}
    out = run_variant(task)
    assert "error" not in out, out
    names = tarfile.open(fileobj=io.BytesIO(out["archive"]), mode="r:gz").getnames()
    assert f"{v.name}/model/deepracer_checkpoints.json" in names and out["entry"]["trials"] == 1
    assert not (tmp_path / "not-here").exists()


@pytest.mark.parametrize("text,fragment", [
    ("name: x\nvary: {hyperparameters.lr: [0.1]}\n", "budget"),
    ("name: x\nbudget: {minutes: 1, iterations: 2}\nvary: {hyperparameters.lr: [0.1]}\n", "exactly one"),
    ("name: x\nbudget: {minutes: 1}\nvary: {colour: [red]}\n", "unknown setting 'colour'"),
    ("name: x\nbudget: {minutes: 1}\nvary: {hyperparameters.lr: {loguniform: [0, 1]}}\nsearch: random\nsamples: 2\n",
     "loguniform needs low > 0"),
    ("name: x\nbudget: {minutes: 1}\nvary: {hyperparameters.lr: {uniform: [0, 1]}}\n", "search: random"),
    ("name: x\nbudget: {minutes: 1}\nvary: {DR_LOCAL_S3_MODEL_PREFIX: [a]}\n", "model prefix"),
    ("name: ../x\nbudget: {minutes: 1}\nvary: {hyperparameters.lr: [0.1]}\n", "name"),
    ("name: x\n  budget: [\n", "not valid YAML"),
])
def test_bad_sweep_specs_are_one_message_naming_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    _small(tmp_path)
    (tmp_path / "s.yaml").write_text(text)
    r = _cli(tmp_path, "sweep", "s.yaml")
    assert r.returncode == 1 and fragment in r.stderr and "s.yaml" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "experiments").exists()


def test_random_search_draws_reproducibly_inside_the_ranges(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: r\nbudget: {minutes: 1}\nsearch: random\nsamples: 50\nseed: 7\nvary:\n"
        "  hyperparameters.lr: {loguniform: [1.0e-5, 1.0e-3]}\n  hyperparameters.num_epochs: {int: [3, 10]}\n"
        "  hyperparameters.discount_factor: [0.99, 0.999]\n")
    a, b = (plan_variants(load_spec(tmp_path / "s.yaml")) for _ in range(2))
    assert [v.settings for v in a] == [v.settings for v in b]
    lrs = [v.settings["hyperparameters.lr"] for v in a]
    assert all(1e-5 <= x <= 1e-3 for x in lrs) and min(lrs) < 1e-4 < max(lrs)
    assert {v.settings["hyperparameters.num_epochs"] for v in a} <= set(range(3, 11))
    assert {v.settings["hyperparameters.discount_factor"] for v in a} == {0.99, 0.999}


def test_racer_diagnostics_read_sigma_clipping_trend_and_slow_laps() -> None:
    import numpy as np

    from drlocal.config.model_metadata import load_model_metadata
    from drlocal.learn.diagnostics import RacerMonitor
    from drlocal.templates import template_files

    md_text = template_files("race-continuous")["custom_files/model_metadata.json"]  # ±25°, 1.5-4 m/s
    md = load_model_metadata(json.loads(md_text))
    mon = RacerMonitor(md)
    # 10 samples: steering clipped in 3 (|a| > 1; exactly 1.0 is not clipped), speed in 1
    acts = np.array([[1.5, 0], [-1.2, 0], [1.01, 0.2], [1.0, -0.5], [0, 1.7]] + [[0.1, 0.1]] * 5)
    laps = [10.0, 9.5, 9.0, 8.5]  # one complete lap per iteration, 0.5 s faster each time
    for it, t in enumerate(laps, 1):
        finals = [{"status": "lap_complete", "steps": t * 15, "reward": 2.0 * t, "progress": 100.0},
                  {"status": "off_track", "steps": 30, "reward": 1.0, "progress": 20.0}]
        d = mon.update(it, acts, finals, 1 / 15, np.log([0.5, 0.2]))
    assert d.action_sigma == pytest.approx((12.5, 0.25))  # σ_norm × half range: 0.5 × 25°, 0.2 × 1.25 m/s
    assert d.clipped_share == pytest.approx((0.3, 0.1))
    assert d.lap_trend_s == pytest.approx(-0.5)
    assert d.lap_reward_r == pytest.approx(1.0) and not d.slow_laps_paid  # 4 laps: below the 8-lap minimum
    for it in range(5, 9):
        d = mon.update(it, acts, [{"status": "lap_complete", "steps": (13 - it) * 15, "reward": 2.0 * (13 - it),
                                   "progress": 100.0}], 1 / 15)
    assert d.slow_laps_paid and "reward pays slower laps (r=+1.00)" in d.line()
    slope = np.polyfit(np.arange(1, 9), [10, 9.5, 9, 8.5, 8, 7, 6, 5], 1)[0]  # the last 8 iterations with laps
    assert d.lap_trend_s == pytest.approx(slope) and "clipped 30%/10%" in d.line() and "lap trend -0.70" in d.line()
    # discrete spaces: no σ or clipping, only the lap readings
    disc = RacerMonitor(load_model_metadata(json.loads(template_files("race")["custom_files/model_metadata.json"])))
    d = disc.update(1, np.array([0, 3, 7]), [], 1 / 15)
    assert d.action_sigma is None and d.clipped_share is None and d.line() == ""


def test_a_continuous_iteration_reports_the_policy_sigma(tmp_path: Path) -> None:
    import numpy as np

    init_workdir(tmp_path, template="race-continuous")
    hp_path = tmp_path / "custom_files" / "hyperparameters.json"
    hp = json.loads(hp_path.read_text())
    hp.update({"num_episodes_between_training": 2, "num_epochs": 1})
    hp_path.write_text(json.dumps(hp))
    reports = []
    tr = Trainer(load_job(tmp_path, environ={}, overrides={"DR_TRAIN_MIN_EVAL_TRIALS": "1"}), max_iterations=1,
                 seed=0, on_iteration=reports.append)
    tr.train()
    sigma = tr.model.log_std.detach().exp().numpy()
    assert reports[0].racer.action_sigma == pytest.approx((sigma[0] * 25.0, sigma[1] * 1.25), rel=1e-6)
    steer, speed = reports[0].racer.clipped_share
    assert 0.15 < steer < 0.5 and 0.15 < speed < 0.5  # σ ≈ 1 at the start: ~32 % of N(0, 1) lies outside ±1
    # the report reads the same from the simtrace: commands at a bound of the range are clipped samples
    from drlocal.analysis.report import build_report, read_simtrace

    prefix = tmp_path / "data" / "bucket" / PREFIX
    cols = read_simtrace(prefix / "training-simtrace" / "0-iteration.csv")
    live = cols["episode_status"] != "prepare"
    at = lambda v, lo, hi: (np.isclose(v, lo, atol=1e-3) | np.isclose(v, hi, atol=1e-3))[live].mean()  # noqa: E731
    html = build_report(prefix, tmp_path / "report", track=tr.track).read_text()
    row = f"<td>0</td><td>{int(live.sum())}</td><td>{at(cols['steer'], -25, 25):.0%}</td>" \
          f"<td>{at(cols['throttle'], 1.5, 4):.0%}</td><td>{sigma[0] * 25:.1f}°</td><td>{sigma[1] * 1.25:.2f}m/s</td>"
    log = json.loads((prefix / "metrics" / "drlocal-racer.json").read_text())
    assert log["iterations"][0]["action_sigma"] == pytest.approx([sigma[0] * 25, sigma[1] * 1.25])
    assert "Clipped samples (continuous actions)" in html and row in html.replace("\n", "").replace(" ", "")
    assert abs(at(cols["steer"], -25, 25) - steer) < 0.05 and abs(at(cols["throttle"], 1.5, 4) - speed) < 0.05



@pytest.mark.parametrize("template", ["race", "race-continuous"])
def test_race_templates_are_deepracer_files_within_the_console_ranges(tmp_path: Path, template: str) -> None:
    r = _cli(tmp_path, "init", "run", "--template", template)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "run"
    job = load_job(root, environ={})
    assert job.warnings == [] and (root / "RACE-TEMPLATE.md").is_file()
    assert job.run.world_name == "reInvent2019_track" and job.run.best_model_metric == "laptime"
    assert job.run.eval_number_of_trials == 3 and job.run.eval_is_continuous
    assert (root / "run.env").read_text().count("DR_WORLD_NAME=") == 1  # DRfC's line replaced in place
    hp = json.loads((root / "custom_files" / "hyperparameters.json").read_text())
    # the DeepRacer console's hyperparameter ranges, so the files upload unchanged
    assert hp["batch_size"] in (32, 64, 128, 256, 512) and 3 <= hp["num_epochs"] <= 10
    assert 1e-8 <= hp["lr"] <= 1e-3 and 0 <= hp["beta_entropy"] <= 1 and 0 <= hp["discount_factor"] <= 1
    assert 5 <= hp["num_episodes_between_training"] <= 100 and hp["loss_type"] in ("huber", "mean_squared_error")
    md = json.loads((root / "custom_files" / "model_metadata.json").read_text())
    assert md["sensor"] == ["FRONT_FACING_CAMERA"] and md["training_algorithm"] == "clipped_ppo"
    if template == "race":
        speeds = [a["speed"] for a in md["action_space"]]
        assert [a["index"] for a in md["action_space"]] == list(range(11)) and min(speeds) == 1.8 and max(speeds) == 4
    else:
        assert md["action_space"] == {"steering_angle": {"low": -25.0, "high": 25.0},
                                      "speed": {"low": 1.5, "high": 4.0}}
        # no entropy bonus: σ starts at the whole range and must fall (RACE-TEMPLATE.md); otherwise the race
        # template's hyperparameters, whose copy this file is (kept whole so it uploads on its own)
        from drlocal.templates import template_files

        race_hp = json.loads(template_files("race")["custom_files/hyperparameters.json"])
        assert hp == {**race_hp, "beta_entropy": 0.0} and race_hp["beta_entropy"] == 0.01
    r = _cli(root, "reward", "test", "custom_files/reward_function.py", "--track", "reInvent2019_track")
    assert r.returncode == 0, r.stdout + r.stderr


def _race_reward_module():
    """The race template's reward_function.py as a module (its racing_line is tested directly)."""
    import types

    from drlocal.templates import template_files

    mod = types.ModuleType("race_reward")
    exec(compile(template_files("race")["custom_files/reward_function.py"], "reward_function.py", "exec"), mod.__dict__)
    return mod


def test_the_race_reward_follows_a_racing_line_that_uses_the_width_and_pays_speed_per_metre() -> None:
    import numpy as np
    from shapely.geometry import LineString, Point

    from drlocal.sim.params import reward_params
    from drlocal.tracks.registry import load_track

    mod = _race_reward_module()
    track = load_track("reInvent2019_track")
    line, _, _, target, ideal = mod.racing_line([list(w) for w in track.route[:, 0:2]], track.width)
    # 231 points 10 cm apart, all on the road; the minimum-curvature line uses the whole width: up to half the
    # width less the 8 cm margin off the centre line (apexes and corner exits), 8 cm from a border at the closest
    assert len(line) == 231 and all(track.road.contains(Point(*p)) for p in line)
    centre = LineString(track.route[:, 0:2])
    borders = (LineString(track.route[:, 2:4]), LineString(track.route[:, 4:6]))
    assert max(centre.distance(Point(*p)) for p in line) == pytest.approx(track.width / 2 - 0.08, abs=0.005)
    assert min(b.distance(Point(*p)) for p in line for b in borders) == pytest.approx(0.078, abs=0.005)
    # its point-mass lap (90 % of μg = 4.9 m/s², 3.3 / 4.9 m/s² accelerate / brake, 4 m/s top) is above the
    # 6.3 s physics floor; target speeds from 1.54 m/s (the tighter hairpin's apex) to 4 m/s
    assert ideal == pytest.approx(6.51, abs=0.02) and ideal > 6.3
    assert 1.5 < target.min() < 1.6 and target.max() == 4.0

    def lap_reward(speed_share: float, shift: float = 0.0) -> float:
        """A lap along the line (shifted sideways by `shift` m) at a share of the target speed, step by step."""
        total = 0.0
        for i in range(0, len(line), 3):
            d = line[(i + 1) % len(line)] - line[i]
            yaw = np.arctan2(d[1], d[0])
            front = line[i] + shift * np.array([-np.sin(yaw), np.cos(yaw)])
            centre_xy = front - 0.14 * np.array([np.cos(yaw), np.sin(yaw)])
            v = speed_share * target[i]
            p = reward_params(track, *centre_xy, np.degrees(yaw), speed=v, steps=10)
            if p["is_offtrack"]:
                continue
            total += mod.reward_function(p) * 0.3 / (v / 15.0)  # 3 points = 0.3 m at v m/s: 0.3 / (v / 15) steps
        return total

    on_pace = lap_reward(1.0)
    # a slower lap earns less, and by more than its speed: paid (speed / 4)² per step, i.e. per metre in
    # proportion to the speed, and the pace term falls too (measured: 0.82 / 0.64 / 0.35 of on pace)
    for share in (0.9, 0.8, 0.6):
        assert lap_reward(share) < share * on_pace, share
    assert lap_reward(1.0, shift=0.2) < 0.9 * on_pace  # so does one 20 cm beside the line (measured: 0.45)


def test_the_race_templates_line_is_drivable_under_the_record_with_its_own_actions() -> None:
    """A scripted driver (pure pursuit on the racing line, 0.9 m ahead, the line's target speed 0.3 m ahead,
    each command snapped to the nearest of the template's 11 actions) drives the fitted car round
    reInvent2019_track: the flying lap is under the 2020 record's 7.67 s, so the line and actions allow it."""
    import numpy as np
    from shapely.geometry import Point

    from drlocal.sim.car import CarParams, CarState, step, wheel_centres
    from drlocal.sim.pursuit import pure_pursuit_steering
    from drlocal.templates import template_files
    from drlocal.tracks.registry import load_track
    from drlocal.tracks.track import TrackLines

    mod = _race_reward_module()
    track = load_track("reInvent2019_track")
    line, _, _, target, _ = mod.racing_line([list(w) for w in track.route[:, 0:2]], track.width)
    closed = np.vstack([line, line[:1]])
    lines = TrackLines(closed, closed, closed, True, track.forward.is_ccw, False)
    md = json.loads(template_files("race")["custom_files/model_metadata.json"])
    actions = np.array([[a["steering_angle"], a["speed"]] for a in md["action_space"]])
    car = CarParams()
    yaw = np.arctan2(*(line[1] - line[0])[::-1])
    state = CarState.at_rest(np.array([line[0, 0] - 0.14 * np.cos(yaw)]), np.array([line[0, 1] - 0.14 * np.sin(yaw)]),
                             np.array([yaw]))
    s_prev = float(lines.project(np.stack([state.x, state.y], -1), normalized=False)[0])
    travelled, laps, lap_start = 0.0, [], 0
    for k in range(400):
        steer = float(pure_pursuit_steering(lines, state, 0.9, car)[0])
        s = float(lines.project(np.stack([state.x, state.y], -1), normalized=False)[0])
        speed = target[int((s + 0.3) / lines.length * len(line)) % len(line)]
        j = int(np.argmin(((actions[:, 0] - steer) / 30) ** 2 + ((actions[:, 1] - speed) / 4) ** 2))
        state = step(state, actions[j, 1:2], actions[j, 0:1], car)
        assert any(track.road.contains(Point(*w)) for w in wheel_centres(state.x, state.y, state.yaw)[0]), k
        ds = float(lines.project(np.stack([state.x, state.y], -1), normalized=False)[0]) - s_prev
        travelled += ds + (lines.length if ds < -lines.length / 2 else 0.0)
        s_prev += ds
        if travelled >= lines.length * (len(laps) + 1):
            laps.append((k + 1 - lap_start) / 15)
            lap_start = k + 1
            if len(laps) == 2:
                break
    assert len(laps) == 2 and laps[1] < 7.67 and laps[1] == pytest.approx(6.80, abs=0.15), laps


def test_an_unknown_template_is_one_error(tmp_path: Path) -> None:
    r = _cli(tmp_path, "init", "run", "--template", "rocket")
    assert r.returncode == 1 and "unknown template 'rocket'" in r.stderr and "race, race-continuous" in r.stderr
    assert not (tmp_path / "run").exists()
