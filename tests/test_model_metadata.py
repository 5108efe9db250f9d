"""model_metadata.json parsing and validation, and the action mapping (contract §5, §6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drlocal.config.model_metadata import DRFC_DEFAULT, load_model_metadata
from drlocal.env.actions import ActionMapper
from drlocal.errors import DrlocalError

CONTINUOUS = {
    "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 4.0}},
    "action_space_type": "continuous",
    "sensor": ["FRONT_FACING_CAMERA"],
    "training_algorithm": "clipped_ppo",
    "version": "5",
}


def test_drfc_default() -> None:
    m = load_model_metadata()
    assert m.camera == "FRONT_FACING_CAMERA" and m.lidar is None and not m.is_continuous
    assert [a.steering_angle for a in m.action_space] == [-30, -15, 0, 15, 30]  # type: ignore[union-attr]
    assert m.version == 5.0 and m.neural_network == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"


def test_simapp_defaults_for_missing_keys() -> None:
    m = load_model_metadata({"action_space": DRFC_DEFAULT["action_space"]})
    assert m.sensor == ["observation"] and m.version == 1.0
    m = load_model_metadata({"action_space": DRFC_DEFAULT["action_space"], "sensor": ["LEFT_CAMERA"]})
    assert m.version == 2.0
    m = load_model_metadata(dict(CONTINUOUS, action_space_type=" Continuous ", training_algorithm="SAC"))
    assert m.is_continuous and m.training_algorithm == "sac"


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    bad = {
        "action_space": [{"steering_angle": 45, "speed": 0.5}, {"steering_angle": 0, "speed": 5}],
        "sensor": ["FRONT_FACING_CAMERA", "STEREO_CAMERAS"],
        "lidar_config": {"num_sectors": 7},
    }
    path = tmp_path / "model_metadata.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DrlocalError) as err:
        load_model_metadata(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 4 invalid value(s):")
    assert "action_space.0.steering_angle = 45" in msg and "action_space.1.speed = 5" in msg
    assert "exactly one camera sensor" in msg and "lidar_config.num_sectors = 7" in msg


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "model_metadata.json"
    path.write_text('{\n  "action_space": [],\n}\n')
    with pytest.raises(DrlocalError, match=r"model_metadata\.json, line 3 column 1: not valid JSON"):
        load_model_metadata(path)


def test_sac_needs_continuous_and_ranges_ordered() -> None:
    with pytest.raises(DrlocalError, match="'sac' needs a continuous"):
        load_model_metadata(dict(DRFC_DEFAULT, training_algorithm="sac"))
    cont = json.loads(json.dumps(CONTINUOUS))
    cont["action_space"]["speed"] = {"low": 2, "high": 1}
    with pytest.raises(DrlocalError, match=r"action_space\.speed .*low \(2\.0\) must be below high \(1\.0\)"):
        load_model_metadata(cont)


def test_discrete_action_mapping() -> None:
    mapper = ActionMapper(load_model_metadata())
    assert mapper.space.n == 5  # type: ignore[attr-defined]
    speed, steer = mapper.commands(np.array([0, 2, 4]))
    assert speed.tolist() == [0.6, 0.6, 0.6] and steer.tolist() == [-30, 0, 30]
    assert mapper.labels(np.array([0, 2, 4]), speed, steer) == [0, 2, 4]
    with pytest.raises(ValueError, match="out of range"):
        mapper.commands(np.array([5]))


def test_continuous_rescaling_from_unit_box() -> None:
    mapper = ActionMapper(load_model_metadata(CONTINUOUS))
    speed, steer = mapper.commands(np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0], [0.5, 2.0]]))
    assert steer.tolist() == [-30.0, 0.0, 30.0, 15.0]
    assert speed.tolist() == [0.5, 2.25, 4.0, 4.0]  # out-of-box actions are clipped first
    assert mapper.labels(None, speed[:1], steer[:1]) == ["[-30.0 0.5]"]  # type: ignore[arg-type]
