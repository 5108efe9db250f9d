"""Object avoidance, head-to-bot and head-to-model end to end: a DRfC folder trains and evaluates, the files
are what deepracer-utils and DRfC read (contract §9.1 obstacle_crash_counter, §10 crash counts, §11)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from drlocal.config.workdir import init_workdir, load_job
from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer
from drlocal.store.logs import SIMTRACE_COLUMNS

EPISODES = 3
#: two boxes side by side at 10 %, 35 %, 60 % and 85 % of the lap: the road is blocked four times
WALLS = "0.1,1;0.1,-1;0.35,1;0.35,-1;0.6,1;0.6,-1;0.85,1;0.85,-1"


def race_job(root: Path, lines: list[str]) -> Path:
    init_workdir(root)
    hp_path = root / "custom_files" / "hyperparameters.json"
    h = json.loads(hp_path.read_text())
    h.update({"num_episodes_between_training": EPISODES, "num_epochs": 1, "term_cond_max_episodes": 2 * EPISODES})
    hp_path.write_text(json.dumps(h))
    md_path = root / "custom_files" / "model_metadata.json"
    md = json.loads(md_path.read_text())
    # straight ahead only, so the car meets what lies ahead on the start straight
    md["action_space"] = [{"steering_angle": 0.0, "speed": 1.5, "index": 0},
                          {"steering_angle": 0.0, "speed": 1.0, "index": 1}]
    md_path.write_text(json.dumps(md))
    with (root / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=1\n" + "".join(f"{line}\n" for line in lines))
    return root


@pytest.fixture(scope="module")
def oa_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = race_job(tmp_path_factory.mktemp("oa"), [
        "DR_RACE_TYPE=OBJECT_AVOIDANCE", f"DR_OA_OBJECT_POSITIONS={WALLS}",
    ])
    Trainer(load_job(root, environ={}), max_iterations=2, seed=3).train()
    return root


def _simtrace(root: Path) -> list[dict[str, str]]:
    rows = []
    for f in sorted((root / "data" / "bucket" / "rl-deepracer-sagemaker" / "training-simtrace").glob("*.csv")):
        lines = f.read_text().splitlines()
        header = lines[0].split(",")
        assert header == list(SIMTRACE_COLUMNS)
        rows += [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    return rows


def test_object_avoidance_training_crashes_into_boxes(oa_run: Path) -> None:
    rows = _simtrace(oa_run)
    ends = [r for r in rows if r["done"] == "True"]
    assert len(ends) == 2 * EPISODES
    # starts at 0 %, 5 %, 10 %, …: driving straight, the first episodes run into the boxes at 10 % / 35 %
    assert any(r["episode_status"] == "crashed" for r in ends)
    assert {r["obstacle_crash_counter"] for r in rows} == {"0"}
    yaml = (oa_run / "data" / "bucket" / "rl-deepracer-sagemaker" / "training_params.yaml").read_text()
    assert "'RACE_TYPE': 'OBJECT_AVOIDANCE'" in yaml and "'NUMBER_OF_OBSTACLES': '8'" in yaml


def test_deepracer_utils_reads_an_object_avoidance_run(oa_run: Path) -> None:
    from deepracer.logs import DeepRacerLog

    log = DeepRacerLog(model_folder=str(oa_run / "data" / "bucket" / "rl-deepracer-sagemaker"))
    log.load()
    df = log.dataframe()
    assert sorted(df["iteration"].unique()) == [0, 1]
    assert "crashed" in set(df["episode_status"])


def test_object_avoidance_evaluation_counts_crashes(oa_run: Path) -> None:
    job = load_job(oa_run, environ={}, overrides={"DR_EVAL_MAX_RESETS": "3", "DR_EVAL_COLLISION_PENALTY": "1.0"})
    res = evaluate(job, checkpoint="last", trials=1, continuous=True)
    lap = res.laps[-1]
    # straight ahead from the line into the boxes at 10 %: each crash pauses 1 s, three resets, then done
    assert lap.crashes >= 1
    data = json.loads(Path(res.metrics_path).read_text())["metrics"][-1]
    assert data["crash_count"] == lap.crashes and data["reset_count"] == lap.resets
    rows = Path(res.simtrace_path).read_text().splitlines()[1:]
    assert sum(",crashed," in r for r in rows) >= 1
    assert sum(",pause," in r for r in rows) >= 15  # 1 s of 15 Hz steps per crash


def test_head_to_model_races_two_models(oa_run: Path, tmp_path: Path) -> None:
    bucket = oa_run / "data" / "bucket"
    shutil.rmtree(bucket / "opponent-model", ignore_errors=True)
    shutil.copytree(bucket / "rl-deepracer-sagemaker", bucket / "opponent-model")
    job = load_job(oa_run, environ={}, overrides={"DR_RACE_TYPE": "HEAD_TO_MODEL",
                                                 "DR_EVAL_OPP_S3_MODEL_PREFIX": "opponent-model"})
    res = evaluate(job, checkpoint="last", trials=1)
    opp = res.extra["opponent"]
    assert res.extra["race_type"] == "HEAD_TO_MODEL" and res.extra["opponent_prefix"] == "opponent-model"
    assert res.laps and opp.laps  # both cars report a lap entry
    assert Path(opp.metrics_path).is_file() and "opponent-model" in opp.metrics_path
    first = Path(res.simtrace_path).read_text().splitlines()[1].split(",")
    first_opp = Path(opp.simtrace_path).read_text().splitlines()[1].split(",")
    # racecar_0 starts at the line on the outer lane, racecar_1 0.75 m behind on the inner lane
    assert float(first[SIMTRACE_COLUMNS.index("progress")]) > 0.0
    assert float(first_opp[SIMTRACE_COLUMNS.index("progress")]) < 0.0


def test_head_to_bot_trains(tmp_path: Path) -> None:
    root = race_job(tmp_path, ["DR_RACE_TYPE=HEAD_TO_BOT", "DR_H2B_NUMBER_OF_BOT_CARS=3",
                               "DR_H2B_IS_LANE_CHANGE=True"])
    Trainer(load_job(root, environ={}), max_iterations=1, seed=1).train()
    rows = _simtrace(root)
    assert rows and {r["episode_status"] for r in rows} <= {
        "prepare", "in_progress", "off_track", "crashed", "immobilized", "reversed", "lap_complete"}
    yaml = (root / "data" / "bucket" / "rl-deepracer-sagemaker" / "training_params.yaml").read_text()
    assert "HEAD_TO_BOT" in yaml and "'NUMBER_OF_BOT_CARS': '3'" in yaml and "'IS_LANE_CHANGE': 'True'" in yaml
    from deepracer.logs import DeepRacerLog

    log = DeepRacerLog(model_folder=str(root / "data" / "bucket" / "rl-deepracer-sagemaker"))
    log.load()
    assert log.dataframe()["unique_episode"].nunique() == EPISODES


def test_env_keywords_put_boxes_in_the_camera() -> None:
    plain = DeepRacerVectorEnv(1, "reinvent_base", training=False)
    oa = DeepRacerVectorEnv(1, "reinvent_base", training=False, race_type="OBJECT_AVOIDANCE",
                            object_positions=((0.08, 1), (0.08, -1)))
    a, _ = plain.reset(seed=0)
    b, info = oa.reset(seed=0)
    assert oa.world.objects.k == 2
    # the two boxes 1.4 m ahead fill columns of the image that are road in the plain view
    diff = np.abs(a.astype(int) - b.astype(int))[0, :, :, 0]
    assert (diff > 20).sum() > 300
    _, _, _, _, info = oa.step(np.array([0]))
    assert len(info["params"][0]["objects_location"]) == 2
    with pytest.raises(TypeError, match="unknown keyword"):
        DeepRacerVectorEnv(1, "reinvent_base", race_type="OBJECT_AVOIDANCE", number_of_boxes=3)


def test_head_to_model_env_cars_race_each_other() -> None:
    env = DeepRacerVectorEnv(2, "reinvent_base", training=False, race_type="HEAD_TO_MODEL")
    obs, info = env.reset(seed=0)
    w = env.world
    lines = w.track.forward
    d = lines.project(np.stack([w.car.x, w.car.y], axis=-1), normalized=False)
    assert d[0] == pytest.approx(0.0, abs=0.02) and d[1] == pytest.approx(lines.length - 0.75, abs=0.02)
    # car 0 on the outer lane (right of the centre line on this CCW track), car 1 on the inner lane
    centre = lines.interpolate(d)
    assert w.car.y[0] < centre[0, 1] and w.car.y[1] > centre[1, 1]
    _, _, _, _, info = env.step(np.array([0, 0]))
    p0, p1 = info["params"]
    assert p0["objects_location"] == [[pytest.approx(w.car.x[1]), pytest.approx(w.car.y[1])]]
    assert p1["objects_location"] == [[pytest.approx(w.car.x[0]), pytest.approx(w.car.y[0])]]
    # car 1 sees car 0 ahead in its camera: darker pixels than an empty road view
    alone = DeepRacerVectorEnv(1, "reinvent_base", training=False)
    alone.reset(seed=0)
    alone.world.car.place(np.ones(1, bool), w.car.x[1], w.car.y[1], w.car.yaw[1])
    empty = alone._observe()
    assert (np.abs(obs[1].astype(int) - empty[0].astype(int)) > 30).sum() > 100
    with pytest.raises(ValueError, match="training=False"):
        DeepRacerVectorEnv(2, "reinvent_base", race_type="HEAD_TO_MODEL")
