"""Race types in run.env: DR_OA_* / DR_H2B_* / DR_EVAL_OPP_* validated, mapped to RaceOptions and the params yaml
with DRfC's semantics (defaults/template-run.env values, scripts/*/prepare-config.py fallbacks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drlocal.config.envfile import parse_env_file
from drlocal.config.run import RACE_TEMPLATE, VARIABLES, RunConfig, build_run_config
from drlocal.config.workdir import RUN_ENV, init_workdir, load_job
from drlocal.errors import DrlocalError
from drlocal.export.droa import (
    droa_training_params,
    head_to_model_params,
    parse_training_params,
    race_type_params,
    run_values_from_training_params,
    training_params_yaml,
)

#: DRfC's defaults/template-run.env lines of the head-to-bot race
H2B_TEMPLATE = """\
DR_H2B_IS_LANE_CHANGE=False
DR_H2B_LOWER_LANE_CHANGE_TIME=3.0
DR_H2B_UPPER_LANE_CHANGE_TIME=5.0
DR_H2B_LANE_CHANGE_DISTANCE=1.0
DR_H2B_NUMBER_OF_BOT_CARS=3
DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS=2.0
DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS=False
DR_H2B_BOT_CAR_SPEED=0.2
DR_H2B_BOT_CAR_PENALTY=5.0
"""


def run_env(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> tuple[RunConfig, list[str]]:
    path = tmp_path / "run.env"
    path.write_text(text)
    return build_run_config(parse_env_file(path, environ={}), environ or {}, base=tmp_path)


def test_object_positions_override_the_number_of_obstacles(tmp_path: Path) -> None:
    run, warnings = run_env(tmp_path, 'DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_NUMBER_OF_OBSTACLES=6\n'
                                      'DR_OA_OBJECT_POSITIONS="0.2,1;0.5,-1"\n')
    assert warnings == []
    assert run.oa_object_positions == ((0.2, 1), (0.5, -1))
    opts = run.race_options(training=True, seed=7)
    assert opts.race_type == "OBJECT_AVOIDANCE" and opts.seed == 7
    assert opts.object_positions == ((0.2, 1), (0.5, -1))
    assert opts.n_obstacles == 2 and opts.number_of_obstacles == 2 and opts.n_bots == 0
    assert run.origins["DR_OA_OBJECT_POSITIONS"] == "run.env:3"


def test_object_avoidance_settings_and_the_randomize_fallback(tmp_path: Path) -> None:
    # missing everywhere: DRfC's prepare-config.py writes RANDOMIZE_OBSTACLE_LOCATIONS 'True'
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_NUMBER_OF_OBSTACLES=4\n"
                               "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES=1.5\nDR_OA_OBSTACLE_TYPE=Amazon_Box_Obstacle\n"
                               "DR_OA_IS_OBSTACLE_BOT_CAR=true\n")
    opts = run.race_options(training=True)
    assert opts.randomize_obstacle_locations is True
    assert (opts.n_obstacles, opts.min_distance_between_obstacles) == (4, 1.5)
    assert (opts.obstacle_type, opts.is_obstacle_bot_car, opts.obstacle_kind) == ("amazon_box_obstacle", True,
                                                                                  "bot_car")
    assert run.oa_randomize_obstacle_locations is False  # the field keeps DRfC's template value
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_RANDOMIZE_OBSTACLE_LOCATIONS=False\n")
    assert run.race_options(training=False).randomize_obstacle_locations is False
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\n", environ={"DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": "0"})
    assert run.race_options(training=True).randomize_obstacle_locations is False  # the environment counts as set
    assert run.origins["DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS"] == "environment"
    # a folder from `drlocal init` has DRfC's template lines: 6 obstacles at fixed, evenly spread places
    init_workdir(tmp_path / "w")
    with (tmp_path / "w" / "run.env").open("a") as f:
        f.write("DR_RACE_TYPE=OBJECT_AVOIDANCE\n")
    opts = load_job(tmp_path / "w", environ={}).run.race_options(training=True)
    assert (opts.n_obstacles, opts.randomize_obstacle_locations, opts.obstacle_type) == (6, False, "box_obstacle")
    # built directly (no files): the fields as they are
    assert RunConfig(race_type="OBJECT_AVOIDANCE").race_options(training=True).randomize_obstacle_locations is False


def test_head_to_bot_template_values_and_script_fallbacks(tmp_path: Path) -> None:
    run, warnings = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_EVAL_RESET_BEHIND_DIST=1.5\n" + H2B_TEMPLATE)
    assert warnings == []
    opts = run.race_options(training=True)
    assert (opts.number_of_bot_cars, opts.n_bots, opts.bot_car_speed, opts.penalty_seconds) == (3, 3, 0.2, 5.0)
    assert (opts.lower_lane_change_time, opts.upper_lane_change_time, opts.lane_change_distance) == (3.0, 5.0, 1.0)
    assert (opts.is_lane_change, opts.randomize_bot_car_locations, opts.min_distance_between_bot_cars) == (
        False, False, 2.0)
    assert opts.reset_behind_dist == 1.5 and opts.n_obstacles == 0
    lines = [ln for ln in H2B_TEMPLATE.splitlines() if not ln.startswith((
        "DR_H2B_BOT_CAR_PENALTY", "DR_H2B_NUMBER_OF_BOT_CARS", "DR_H2B_IS_LANE_CHANGE", "DR_H2B_BOT_CAR_SPEED"))]
    assert len(lines) == 5
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_H2B_IS_LANE_CHANGE=True\nDR_H2B_BOT_CAR_SPEED=0.5\n"
                     + "\n".join(lines) + "\n")
    opts = run.race_options(training=False)
    assert opts.penalty_seconds == 2.0  # DRfC's fallback when DR_H2B_BOT_CAR_PENALTY is missing
    assert opts.number_of_bot_cars == 0 and opts.n_bots == 0  # DRfC's script: '0' when missing (template: 3)
    assert opts.is_lane_change is True and opts.bot_car_speed == 0.5
    assert run.h2b_bot_car_penalty == 5.0 and run.h2b_number_of_bot_cars == 3  # fields: template values


@pytest.mark.parametrize(("race", "line", "var", "expected"), [
    ("OBJECT_AVOIDANCE", "DR_OA_NUMBER_OF_OBSTACLES=six", "DR_OA_NUMBER_OF_OBSTACLES", "valid integer"),
    ("OBJECT_AVOIDANCE", "DR_OA_NUMBER_OF_OBSTACLES=-1", "DR_OA_NUMBER_OF_OBSTACLES", "greater than or equal to 0"),
    ("OBJECT_AVOIDANCE", "DR_OA_NUMBER_OF_OBSTACLES=1000", "DR_OA_NUMBER_OF_OBSTACLES", "less than or equal to 100"),
    ("OBJECT_AVOIDANCE", "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES=nan", "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES",
     "finite number"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBSTACLE_TYPE=crate", "DR_OA_OBSTACLE_TYPE",
     "'box_obstacle', 'deepracer_box_obstacle' or 'amazon_box_obstacle'"),
    ("OBJECT_AVOIDANCE", "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS=maybe", "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS",
     "valid boolean"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=0.3;x", "DR_OA_OBJECT_POSITIONS", "'0.3' is not 'ndist,lane'"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=0.3,a", "DR_OA_OBJECT_POSITIONS", "not two numbers"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=0.2,1;1.5,-1", "DR_OA_OBJECT_POSITIONS", "1.5 in '1.5,-1' is "
     "outside [0, 1]"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=-0.1,1", "DR_OA_OBJECT_POSITIONS", "outside [0, 1]"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=nan,1", "DR_OA_OBJECT_POSITIONS", "outside [0, 1]"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=0.5,inf", "DR_OA_OBJECT_POSITIONS", "not a whole number"),
    ("OBJECT_AVOIDANCE", "DR_OA_OBJECT_POSITIONS=0.5,0.5", "DR_OA_OBJECT_POSITIONS", "not a whole number"),
    ("HEAD_TO_BOT", "DR_H2B_BOT_CAR_SPEED=0", "DR_H2B_BOT_CAR_SPEED", "greater than 0"),
    ("HEAD_TO_BOT", "DR_H2B_BOT_CAR_SPEED=fast", "DR_H2B_BOT_CAR_SPEED", "valid number"),
    ("HEAD_TO_BOT", "DR_H2B_NUMBER_OF_BOT_CARS=-2", "DR_H2B_NUMBER_OF_BOT_CARS", "greater than or equal to 0"),
    ("HEAD_TO_BOT", "DR_H2B_NUMBER_OF_BOT_CARS=2.5", "DR_H2B_NUMBER_OF_BOT_CARS", "valid integer"),
    ("HEAD_TO_BOT", "DR_H2B_LANE_CHANGE_DISTANCE=0", "DR_H2B_LANE_CHANGE_DISTANCE", "greater than 0"),
    ("HEAD_TO_BOT", "DR_H2B_BOT_CAR_PENALTY=-5", "DR_H2B_BOT_CAR_PENALTY", "greater than or equal to 0"),
    ("HEAD_TO_BOT", "DR_H2B_LOWER_LANE_CHANGE_TIME=6", "DR_H2B_LOWER_LANE_CHANGE_TIME",
     "DR_H2B_LOWER_LANE_CHANGE_TIME (6.0) is greater than DR_H2B_UPPER_LANE_CHANGE_TIME (5.0)"),
    ("HEAD_TO_BOT", "DR_H2B_UPPER_LANE_CHANGE_TIME=2", "DR_H2B_UPPER_LANE_CHANGE_TIME",
     "DR_H2B_LOWER_LANE_CHANGE_TIME (3.0) is greater than DR_H2B_UPPER_LANE_CHANGE_TIME (2.0)"),
    ("HEAD_TO_MODEL", "DR_EVAL_OPP_S3_MODEL_PREFIX=../other", "DR_EVAL_OPP_S3_MODEL_PREFIX",
     "relative name inside the bucket"),
    ("TIME_TRIAL", "DR_EVAL_RESET_BEHIND_DIST=-1", "DR_EVAL_RESET_BEHIND_DIST", "greater than or equal to 0"),
])
def test_bad_values_name_file_line_variable_and_allowed_values(tmp_path: Path, race: str, line: str, var: str,
                                                               expected: str) -> None:
    with pytest.raises(DrlocalError) as err:
        run_env(tmp_path, f"DR_RACE_TYPE={race}\n{line}\n")
    msg = str(err.value)
    value = line.split("=", 1)[1]
    assert msg.startswith("1 invalid setting(s):\n")
    assert f"run.env:2: {var}={value!r}: " in msg and expected in msg
    assert "Traceback" not in msg


def test_lower_lane_change_time_error_names_the_line_that_sets_it(tmp_path: Path) -> None:
    with pytest.raises(DrlocalError) as err:
        run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_H2B_UPPER_LANE_CHANGE_TIME=4\n"
                          "DR_H2B_LOWER_LANE_CHANGE_TIME=4.5\n")
    assert "run.env:2: DR_H2B_UPPER_LANE_CHANGE_TIME='4': DR_H2B_LOWER_LANE_CHANGE_TIME (4.5) is greater" in str(
        err.value)
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_H2B_UPPER_LANE_CHANGE_TIME=4\n"
                               "DR_H2B_LOWER_LANE_CHANGE_TIME=4\n")  # equal is fine: a fixed interval
    assert run.race_options(training=True).lower_lane_change_time == 4.0


def test_settings_of_other_race_types_warn_once_and_are_not_validated(tmp_path: Path) -> None:
    run, warnings = run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_H2B_NUMBER_OF_BOT_CARS=5\n"
                                      "DR_H2B_BOT_CAR_SPEED=fast\nDR_H2B_IS_LANE_CHANGE=False\n"
                                      "DR_EVAL_OPP_CAR_NAME=Rival\nDR_OA_NUMBER_OF_OBSTACLES=3\n")
    assert warnings == [
        "DR_H2B_BOT_CAR_SPEED (run.env:3), DR_H2B_NUMBER_OF_BOT_CARS (run.env:2) only apply to HEAD_TO_BOT races; "
        "ignored with DR_RACE_TYPE=OBJECT_AVOIDANCE",
        "DR_EVAL_OPP_CAR_NAME (run.env:5) only applies to HEAD_TO_MODEL races; ignored with "
        "DR_RACE_TYPE=OBJECT_AVOIDANCE",
    ]  # DR_H2B_IS_LANE_CHANGE is at its template value: not worth a word
    assert run.h2b_number_of_bot_cars == 3 and run.h2b_bot_car_speed == 0.2 and run.oa_number_of_obstacles == 3
    assert run.opponent is None
    assert run.origins["DR_H2B_NUMBER_OF_BOT_CARS"] == "run.env:2 (ignored: DR_RACE_TYPE=OBJECT_AVOIDANCE)"
    # the selected race type's own settings are honoured without a word
    run, warnings = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_H2B_NUMBER_OF_BOT_CARS=5\n")
    assert warnings == [] and run.race_options(training=True).n_bots == 5
    # an invalid value elsewhere: the error notes what is ignored as well
    with pytest.raises(DrlocalError) as err:
        run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_NUMBER_OF_OBSTACLES=x\nDR_H2B_BOT_CAR_SPEED=1\n")
    msg = str(err.value)
    assert "run.env:2: DR_OA_NUMBER_OF_OBSTACLES='x'" in msg
    assert "(note: DR_H2B_BOT_CAR_SPEED (run.env:3) only applies to HEAD_TO_BOT races" in msg


def test_head_to_model_opponent(tmp_path: Path) -> None:
    run, warnings = run_env(tmp_path, "DR_RACE_TYPE=head_to_model\nDR_EVAL_OPP_S3_MODEL_PREFIX=rival-model\n"
                                      "DR_EVAL_OPP_CAR_NAME=Rival\nDR_EVAL_OPP_DISPLAY_NAME=$DR_EVAL_OPP_CAR_NAME\n"
                                      "DR_EVAL_OPP_RACER_NAME=Someone\nDR_EVAL_OPP_CAR_BODY_SHELL_TYPE=f1_2021\n")
    assert warnings == []
    opp = run.opponent
    assert opp is not None
    assert (opp.prefix, opp.car_name, opp.display_name, opp.racer_name, opp.body_shell_type, opp.metrics_prefix) == (
        "rival-model", "Rival", "Rival", "Someone", "f1_2021", "rival-model/metrics")
    assert run.race_options(training=False).race_type == "HEAD_TO_MODEL"
    with pytest.raises(DrlocalError, match="HEAD_TO_MODEL is an evaluation race"):
        run.race_options(training=True)
    assert RunConfig(race_type="HEAD_TO_MODEL").opponent.display_name == "FasterCar"  # type: ignore[union-attr]


def test_training_params_yaml_has_the_selected_race_types_keys_as_drfc_writes_them(tmp_path: Path) -> None:
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_NUMBER_OF_OBSTACLES=6\n"
                               "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES=2.0\nDR_OA_IS_OBSTACLE_BOT_CAR=False\n"
                               "DR_OA_OBSTACLE_TYPE=box_obstacle\nDR_OA_OBJECT_POSITIONS=\n" + H2B_TEMPLATE)
    p = droa_training_params(run)
    oa = {k: p[k] for k in ("RACE_TYPE", "NUMBER_OF_OBSTACLES", "MIN_DISTANCE_BETWEEN_OBSTACLES",
                            "RANDOMIZE_OBSTACLE_LOCATIONS", "IS_OBSTACLE_BOT_CAR", "OBSTACLE_TYPE")}
    assert oa == {"RACE_TYPE": "OBJECT_AVOIDANCE", "NUMBER_OF_OBSTACLES": "6", "MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0",
                  "RANDOMIZE_OBSTACLE_LOCATIONS": "True",  # not in run.env: DRfC's fallback
                  "IS_OBSTACLE_BOT_CAR": "False", "OBSTACLE_TYPE": "box_obstacle"}
    assert "OBJECT_POSITIONS" not in p  # empty: DRfC writes no list
    for key in ("IS_LANE_CHANGE", "NUMBER_OF_BOT_CARS", "BOT_CAR_SPEED", "PENALTY_SECONDS", "RESET_BEHIND_DIST"):
        assert key not in p
    text = training_params_yaml(p)
    assert "'NUMBER_OF_OBSTACLES': '6'\n" in text and "'RANDOMIZE_OBSTACLE_LOCATIONS': 'True'\n" in text
    assert "BOT_CARS" not in text and "PENALTY_SECONDS" not in text
    # the raw DR_* values give the same (as DRfC's script reads them from the environment)
    raw = {"DR_RACE_TYPE": "OBJECT_AVOIDANCE", "DR_OA_NUMBER_OF_OBSTACLES": "6",
           "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0", "DR_OA_IS_OBSTACLE_BOT_CAR": "False",
           "DR_OA_OBSTACLE_TYPE": "box_obstacle"}
    assert droa_training_params(raw) == p
    # fixed positions: a YAML list of "ndist,lane" strings, and their number
    run, _ = run_env(tmp_path, 'DR_RACE_TYPE=OBJECT_AVOIDANCE\nDR_OA_OBJECT_POSITIONS="0.2,1;0.5,-1"\n'
                               "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS=false\n")
    p = droa_training_params(run)
    assert p["OBJECT_POSITIONS"] == ["0.2,1", "0.5,-1"] and p["NUMBER_OF_OBSTACLES"] == "2"
    assert p["RANDOMIZE_OBSTACLE_LOCATIONS"] == "False"
    text = training_params_yaml(p)
    assert "'OBJECT_POSITIONS':\n- '0.2,1'\n- '0.5,-1'\n" in text
    back = parse_training_params(text)
    assert back == p and droa_training_params(run_values_from_training_params(back)) == p


def test_head_to_bot_params_yaml_and_evaluation_keys(tmp_path: Path) -> None:
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\nDR_H2B_BOT_CAR_SPEED=0.35\nDR_H2B_IS_LANE_CHANGE=true\n"
                               "DR_OA_NUMBER_OF_OBSTACLES=3\n")
    p = race_type_params(run)
    assert p == {"IS_LANE_CHANGE": "True", "LOWER_LANE_CHANGE_TIME": "3.0", "UPPER_LANE_CHANGE_TIME": "5.0",
                 "LANE_CHANGE_DISTANCE": "1.0", "NUMBER_OF_BOT_CARS": "0", "MIN_DISTANCE_BETWEEN_BOT_CARS": "2.0",
                 "RANDOMIZE_BOT_CAR_LOCATIONS": "False", "BOT_CAR_SPEED": "0.35", "PENALTY_SECONDS": "2.0"}
    assert race_type_params(run, evaluation=True)["RESET_BEHIND_DIST"] == "1.0"
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_BOT\n" + H2B_TEMPLATE)
    p = droa_training_params(run)
    assert (p["NUMBER_OF_BOT_CARS"], p["BOT_CAR_SPEED"], p["PENALTY_SECONDS"]) == ("3", "0.2", "5.0")
    assert "NUMBER_OF_OBSTACLES" not in p
    assert race_type_params({"DR_RACE_TYPE": "TIME_TRIAL"}, evaluation=True) == {"RESET_BEHIND_DIST": "1.0"}


def test_head_to_model_evaluation_params(tmp_path: Path) -> None:
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=HEAD_TO_MODEL\nDR_EVAL_OPP_S3_MODEL_PREFIX=rival\n"
                               "DR_EVAL_OPP_CAR_NAME=Rival\nDR_LOCAL_S3_BUCKET=bkt\n")
    base = {"MODEL_S3_PREFIX": ["mine"], "MODEL_S3_BUCKET": ["bkt"], "DISPLAY_NAME": ["Me"], "RACER_NAME": ["Me"],
            "BODY_SHELL_TYPE": ["deepracer"], "CAR_COLOR": ["Red"], "METRICS_S3_OBJECT_KEY": ["m/e.json"]}
    p = head_to_model_params(base, run, 1700000000)
    assert p["MODEL_S3_PREFIX"] == ["mine", "rival"] and p["MODEL_S3_BUCKET"] == ["bkt", "bkt"]
    assert p["DISPLAY_NAME"] == ["Me", "Rival"] and p["MODEL_NAME"] == ["Me", "Rival"]
    assert p["METRICS_S3_OBJECT_KEY"] == ["m/e.json", "rival/metrics/EvaluationMetrics-1700000000.json"]
    assert p["CAR_COLOR"] == ["Purple", "Orange"] and p["VIDEO_JOB_TYPE"] == "EVALUATION"
    assert base["MODEL_S3_PREFIX"] == ["mine"]  # not changed
    run, _ = run_env(tmp_path, "DR_RACE_TYPE=TIME_TRIAL\n")
    assert head_to_model_params(base, run, 1) == base


def test_init_writes_drfcs_race_type_template_lines() -> None:
    lines = set(RUN_ENV.splitlines())
    for var, value in RACE_TEMPLATE.items():
        if var in ("DR_EVAL_OPP_DISPLAY_NAME", "DR_EVAL_OPP_RACER_NAME"):
            assert f"{var}=$DR_EVAL_OPP_CAR_NAME" in lines
        elif var != "DR_EVAL_OPP_S3_METRICS_PREFIX":  # not in DRfC's template
            assert f"{var}={value}" in lines
    assert "DR_EVAL_RESET_BEHIND_DIST=1.0" in lines
    assert all(v in VARIABLES for v in RACE_TEMPLATE)
