"""Loading user reward functions: every failure names the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from drlocal import RewardFunctionError, load_reward_function, load_track, reward_params


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "reward_function.py"
    p.write_text(text)
    return p


def params() -> dict:
    t = load_track("reinvent_base")
    return reward_params(t, *t.waypoints[3], heading=0.0, speed=1.0)


def test_loads_and_calls_a_console_style_function(tmp_path: Path) -> None:
    p = write(
        tmp_path, "import math\ndef reward_function(params):\n    return 1 if params['all_wheels_on_track'] else 0\n"
    )
    fn = load_reward_function(p)
    value = fn(params())
    assert value == 1.0 and isinstance(value, float)


def test_default_is_centre_line_reward() -> None:
    fn = load_reward_function(None)
    assert fn(params()) == 1.0
    far = params() | {"distance_from_center": 0.3, "track_width": 0.76}
    assert fn(far) == 0.1


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "def reward_function(params):\n    x = (1 +\n    return x\n")
    with pytest.raises(RewardFunctionError) as err:
        load_reward_function(p)
    msg = str(err.value)
    assert f"{p}, line " in msg and "SyntaxError" in msg and "fix:" in msg


def test_missing_function_lists_what_was_found(tmp_path: Path) -> None:
    p = write(tmp_path, "def reward(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"no function named `reward_function` \(found: reward\)"):
        load_reward_function(p)


def test_missing_file() -> None:
    with pytest.raises(RewardFunctionError, match=r"nope\.py: reward function file not found"):
        load_reward_function("nope.py")


def test_import_error_at_load_names_line(tmp_path: Path) -> None:
    p = write(tmp_path, "import math\nimport not_a_module_xyz\ndef reward_function(params):\n    return 1.0\n")
    with pytest.raises(RewardFunctionError, match=r"line 2: loading the reward function raised ModuleNotFoundError"):
        load_reward_function(p)


def test_exception_names_line_and_params(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "def helper(v):\n    return 1.0 / v\n\n"
        "def reward_function(params):\n    return helper(params['steering_angle'])\n",
    )
    fn = load_reward_function(p)
    with pytest.raises(RewardFunctionError) as err:
        fn(params())
    msg = str(err.value)
    assert f"{p}, line 2: reward_function raised ZeroDivisionError" in msg  # innermost line in the user's file
    assert "steering_angle=0.0" in msg and "progress=" in msg


@pytest.mark.parametrize(
    ("ret", "fragment"),
    [
        ("float('nan')", "returned nan"),
        ("float('inf')", "returned inf"),
        ("1e6", "returned 1000000.0"),
        ("-100001", "returned -100001.0"),
        ("'fast'", "returned 'fast' (str), not a number"),
        ("None", "returned None (NoneType), not a number"),
    ],
)
def test_invalid_return_values(tmp_path: Path, ret: str, fragment: str) -> None:
    p = write(tmp_path, f"def reward_function(params):\n    return {ret}\n")
    with pytest.raises(RewardFunctionError) as err:
        load_reward_function(p)(params())
    assert fragment in str(err.value) and str(p) in str(err.value)


def test_limits_are_inclusive(tmp_path: Path) -> None:
    p = write(tmp_path, "def reward_function(params):\n    return -1e5\n")
    assert load_reward_function(p)(params()) == -1e5
