"""`training_params.yaml` as DeepRacer-on-AWS imports it and the simapp reads it.

`droa_training_params(values, track, prefix, bucket)` turns a run's DR_* settings into the yaml's
keys; `training_params_yaml(params)` writes them as DRfC's `scripts/upload/prepare-config.py`
does (`yaml.dump(…, default_flow_style=False, default_style="'", explicit_start=True)`: `---`,
keys sorted, every key and value single-quoted, non-string values tagged, e.g. `!!bool 'true'`,
one line per value; PyYAML would fold a value with spaces past column 80, which reads the same).
`parse_training_params` reads such a file back (and drlocal's older `KEY: "value"` one).

Who needs which key:

* simapp (`markov/boto/s3/constants.py` TRAINING_MANDATORY_YAML_KEY; the training worker stops without
  them): SAGEMAKER_SHARED_S3_BUCKET, SAGEMAKER_SHARED_S3_PREFIX, METRICS_S3_BUCKET,
  METRICS_S3_OBJECT_KEY, MODEL_METADATA_FILE_S3_KEY, BODY_SHELL_TYPE, CAR_COLOR. It appends `_cw` /
  `_ccw` to WORLD_NAME when TRACK_DIRECTION_CLOCKWISE is present (`yaml_file._update_world_name`),
  so that key goes only with a base name of a track that exists in both directions.
* DeepRacer-on-AWS import (`ImportHelper.getTrackConfig`, `getCarCustomization`, `determineRaceType`,
  then `validateTrackConfig`): WORLD_NAME must be one of its track ids (no `_cw`/`_ccw`);
  for a track with both directions TRACK_DIRECTION_CLOCKWISE must be the YAML boolean true for
  clockwise (it compares `=== true`; the string 'True' would mean counter-clockwise), for a
  one-direction track it is ignored (its default direction is used); BODY_SHELL_TYPE and, for the
  `deepracer` shell, CAR_COLOR give the car; RACE_TYPE. It also requires `model_metadata.json`,
  `reward_function.py`, `hyperparameters.json` at the folder root (website) and reads
  `ip/hyperparameters.json` (API).

Where each value comes from (defaults are DRfC's `defaults/template-run.env` / `template-system.env`,
which are also drlocal's RunConfig defaults):

key: value [source in DRfC `scripts/`, the simapp or DeepRacer-on-AWS]

* AWS_REGION: DR_AWS_APP_REGION, else us-east-1 [upload/prepare-config.py]
* JOB_TYPE: TRAINING [upload/prepare-config.py]
* WORLD_NAME: DR_WORLD_NAME; the base name (no _cw/_ccw) when TRACK_DIRECTION_CLOCKWISE is
  written [droa/import_model.py]
* TRACK_DIRECTION_CLOCKWISE: only for tracks bundled as both `<base>_cw` and `<base>_ccw`: whether
  the car drives clockwise, from the route's geometry and DR_TRAIN_REVERSE_DIRECTION [DRoA
  ImportHelper.getTrackConfig, TrackHelper; simapp yaml_file.py]
* REVERSE_DIR: DR_TRAIN_REVERSE_DIRECTION; False when the reversal is already in
  TRACK_DIRECTION_CLOCKWISE [training/prepare-config.py]
* RACE_TYPE: DR_RACE_TYPE, else TIME_TRIAL [upload/prepare-config.py]
* CAR_NAME: DR_CAR_NAME, else FastCar [upload/prepare-config.py; its own default is MyCar]
* DISPLAY_NAME, RACER_NAME: DR_DISPLAY_NAME / DR_RACER_NAME, else the car name [template-run.env]
* BODY_SHELL_TYPE: DR_CAR_BODY_SHELL_TYPE, else deepracer [simapp mandatory; DRoA car]
* CAR_COLOR: DR_CAR_COLOR, else Red; written for every shell (the simapp requires it, DRoA reads it
  for the deepracer shell only) [simapp mandatory; training/prepare-config.py]
* SAGEMAKER_SHARED_S3_BUCKET, METRICS_S3_BUCKET, SIMTRACE_S3_BUCKET: `bucket` [simapp mandatory;
  training/prepare-config.py]
* SAGEMAKER_SHARED_S3_PREFIX, SIMTRACE_S3_PREFIX: `prefix` [same]
* METRICS_S3_OBJECT_KEY: `<DR_LOCAL_S3_METRICS_PREFIX, else <prefix>/metrics>/TrainingMetrics.json`,
  where the file is [simapp mandatory; training/prepare-config.py]
* MODEL_METADATA_FILE_S3_KEY: `<prefix>/model/model_metadata.json`, the prefix's copy [simapp
  mandatory; upload/prepare-config.py, DRoA]
* REWARD_FILE_S3_KEY: `<prefix>/reward_function.py` [upload/prepare-config.py, DRoA]
* NUM_WORKERS: 1 (drlocal runs one worker) [training/prepare-config.py]
* CHANGE_START_POSITION, ALTERNATE_DRIVING_DIRECTION, START_POSITION_OFFSET,
  ROUND_ROBIN_ADVANCE_DIST, MIN_EVAL_TRIALS, BEST_MODEL_METRIC, ENABLE_DOMAIN_RANDOMIZATION:
  the DR_TRAIN_* / DR_ENABLE_DOMAIN_RANDOMIZATION values [training/prepare-config.py]
* only with RACE_TYPE OBJECT_AVOIDANCE: NUMBER_OF_OBSTACLES, MIN_DISTANCE_BETWEEN_OBSTACLES,
  RANDOMIZE_OBSTACLE_LOCATIONS, IS_OBSTACLE_BOT_CAR, OBSTACLE_TYPE from the DR_OA_* values, and
  OBJECT_POSITIONS (a list of "ndist,lane" strings, which also sets NUMBER_OF_OBSTACLES) when
  DR_OA_OBJECT_POSITIONS is not empty [training/ and evaluation/prepare-config.py]
* only with RACE_TYPE HEAD_TO_BOT: IS_LANE_CHANGE, LOWER_LANE_CHANGE_TIME, UPPER_LANE_CHANGE_TIME,
  LANE_CHANGE_DISTANCE, NUMBER_OF_BOT_CARS, MIN_DISTANCE_BETWEEN_BOT_CARS, RANDOMIZE_BOT_CAR_LOCATIONS,
  BOT_CAR_SPEED from the DR_H2B_* values, PENALTY_SECONDS from DR_H2B_BOT_CAR_PENALTY [same]

A race-type variable that is set nowhere gets the fallback of DRfC's prepare-config.py (RACE_YAML), which
differs from the template value for RANDOMIZE_OBSTACLE_LOCATIONS ('True'), NUMBER_OF_BOT_CARS ('0') and
PENALTY_SECONDS ('2.0'); `race_type_params` serves the evaluation params too (with RESET_BEHIND_DIST),
and `head_to_model_params` adds a HEAD_TO_MODEL evaluation's opponent.

TRACK_DIRECTION_CLOCKWISE: DRfC's `droa/import_model.py` guesses it from the name (`_cw` → true,
`_ccw` → false, otherwise `not DR_TRAIN_REVERSE_DIRECTION`). drlocal takes the direction the car
actually drives (the route's orientation, reversed by DR_TRAIN_REVERSE_DIRECTION): the same for
`_cw` / `_ccw` names driven forward, and right for the base names (`reInvent2019_track` is
counter-clockwise) and for reversed runs. A one-direction track cannot be imported reversed:
DeepRacer-on-AWS lists it in its default direction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_SUFFIX = re.compile(r"_(cw|ccw)$")
TRAINING_MANDATORY_YAML_KEYS = (
    "SAGEMAKER_SHARED_S3_BUCKET", "SAGEMAKER_SHARED_S3_PREFIX", "METRICS_S3_BUCKET", "METRICS_S3_OBJECT_KEY",
    "MODEL_METADATA_FILE_S3_KEY", "BODY_SHELL_TYPE", "CAR_COLOR",
)
#: training_params.yaml key -> the DR_* variable it is made from (to read a yaml back into DR values)
YAML_TO_DR = {
    "WORLD_NAME": "DR_WORLD_NAME", "RACE_TYPE": "DR_RACE_TYPE", "CAR_NAME": "DR_CAR_NAME",
    "BODY_SHELL_TYPE": "DR_CAR_BODY_SHELL_TYPE", "CAR_COLOR": "DR_CAR_COLOR", "DISPLAY_NAME": "DR_DISPLAY_NAME",
    "RACER_NAME": "DR_RACER_NAME", "AWS_REGION": "DR_AWS_APP_REGION", "REVERSE_DIR": "DR_TRAIN_REVERSE_DIRECTION",
    "CHANGE_START_POSITION": "DR_TRAIN_CHANGE_START_POSITION",
    "ALTERNATE_DRIVING_DIRECTION": "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
    "START_POSITION_OFFSET": "DR_TRAIN_START_POSITION_OFFSET",
    "ROUND_ROBIN_ADVANCE_DIST": "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST", "MIN_EVAL_TRIALS": "DR_TRAIN_MIN_EVAL_TRIALS",
    "BEST_MODEL_METRIC": "DR_TRAIN_BEST_MODEL_METRIC", "ENABLE_DOMAIN_RANDOMIZATION": "DR_ENABLE_DOMAIN_RANDOMIZATION",
    "SAGEMAKER_SHARED_S3_BUCKET": "DR_LOCAL_S3_BUCKET", "SAGEMAKER_SHARED_S3_PREFIX": "DR_LOCAL_S3_MODEL_PREFIX",
}
#: race type -> {params yaml key: (DR_* variable, DRfC prepare-config.py's fallback when it is unset)}
RACE_YAML: dict[str, dict[str, tuple[str, str]]] = {
    "OBJECT_AVOIDANCE": {
        "NUMBER_OF_OBSTACLES": ("DR_OA_NUMBER_OF_OBSTACLES", "6"),
        "MIN_DISTANCE_BETWEEN_OBSTACLES": ("DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES", "2.0"),
        "RANDOMIZE_OBSTACLE_LOCATIONS": ("DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS", "True"),
        "IS_OBSTACLE_BOT_CAR": ("DR_OA_IS_OBSTACLE_BOT_CAR", "false"),
        "OBSTACLE_TYPE": ("DR_OA_OBSTACLE_TYPE", "box_obstacle"),
    },
    "HEAD_TO_BOT": {
        "IS_LANE_CHANGE": ("DR_H2B_IS_LANE_CHANGE", "False"),
        "LOWER_LANE_CHANGE_TIME": ("DR_H2B_LOWER_LANE_CHANGE_TIME", "3.0"),
        "UPPER_LANE_CHANGE_TIME": ("DR_H2B_UPPER_LANE_CHANGE_TIME", "5.0"),
        "LANE_CHANGE_DISTANCE": ("DR_H2B_LANE_CHANGE_DISTANCE", "1.0"),
        "NUMBER_OF_BOT_CARS": ("DR_H2B_NUMBER_OF_BOT_CARS", "0"),
        "MIN_DISTANCE_BETWEEN_BOT_CARS": ("DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS", "2.0"),
        "RANDOMIZE_BOT_CAR_LOCATIONS": ("DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS", "False"),
        "BOT_CAR_SPEED": ("DR_H2B_BOT_CAR_SPEED", "0.2"),
        "PENALTY_SECONDS": ("DR_H2B_BOT_CAR_PENALTY", "2.0"),
    },
}
YAML_TO_DR.update({k: dr for keys in RACE_YAML.values() for k, (dr, _) in keys.items()})
YAML_TO_DR["OBJECT_POSITIONS"] = "DR_OA_OBJECT_POSITIONS"
_BOOLS = ("DR_TRAIN_REVERSE_DIRECTION", "DR_TRAIN_CHANGE_START_POSITION", "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
          "DR_ENABLE_DOMAIN_RANDOMIZATION")
_DEFAULTS = {
    "DR_AWS_APP_REGION": "us-east-1", "DR_WORLD_NAME": "reinvent_base", "DR_RACE_TYPE": "TIME_TRIAL",
    "DR_CAR_NAME": "FastCar", "DR_CAR_BODY_SHELL_TYPE": "deepracer", "DR_CAR_COLOR": "Red",
    "DR_TRAIN_CHANGE_START_POSITION": "True", "DR_TRAIN_REVERSE_DIRECTION": "False",
    "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION": "False", "DR_TRAIN_START_POSITION_OFFSET": "0.0",
    "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST": "0.05", "DR_TRAIN_MIN_EVAL_TRIALS": "5",
    "DR_TRAIN_BEST_MODEL_METRIC": "progress", "DR_ENABLE_DOMAIN_RANDOMIZATION": "False",
    "DR_LOCAL_S3_BUCKET": "bucket", "DR_LOCAL_S3_MODEL_PREFIX": "rl-deepracer-sagemaker",
}


def _truthy(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes", "y", "on")


def dr_values(values: Any) -> dict[str, Any]:
    """DR_* name -> value from a mapping (DR_* names or RunConfig field names), a RunConfig or a Job."""
    from drlocal.config.run import RACE_VARIABLES, VARIABLES

    run = getattr(values, "run", values)  # a Job
    if not isinstance(run, Mapping):  # a RunConfig
        # race-type variables set nowhere are left out, so that DRfC's fallbacks apply (see RACE_YAML)
        origins = getattr(run, "origins", None) or {}
        unset = {k for keys in RACE_VARIABLES.values() for k in keys if origins.get(k) == "default"}
        values = {dr: getattr(run, f) for dr, f in VARIABLES.items() if hasattr(run, f) and dr not in unset}
    by_field = {f: dr for dr, f in VARIABLES.items()}
    out: dict[str, Any] = {}
    for k, v in values.items():
        if v is None or (isinstance(v, str) and not v.strip()):  # unset: the default
            continue
        out[by_field.get(k, k)] = v
    return out


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    return str(v)


def track_direction(world: str, reverse: bool, track: Any = None) -> tuple[str, bool | None]:
    """(WORLD_NAME, TRACK_DIRECTION_CLOCKWISE or None) for a world name driven forward or reversed.

    TRACK_DIRECTION_CLOCKWISE is given only for tracks bundled in both directions (`<base>_cw` and
    `<base>_ccw`), with the base name: whether the car drives clockwise (route orientation, reversed)."""
    from drlocal.errors import DrlocalError
    from drlocal.tracks import load_track, track_names

    base = _SUFFIX.sub("", world)
    names = track_names()
    if f"{base}_cw" not in names or f"{base}_ccw" not in names:
        return world, None
    if track is None:
        try:
            track = load_track(world)
        except DrlocalError:
            return world, None
    return base, not track.lines(reverse).is_ccw


def droa_training_params(values: Any, track: Any = None, prefix: str | None = None,
                         bucket: str | None = None) -> dict[str, str | bool]:
    """training_params.yaml's keys for a run (see the module docstring for every key's source).

    values: DR_* variable -> value as in run.env / system.env (strings, or bools / numbers; RunConfig
    field names are accepted too), or a RunConfig, or a Job; missing ones take DRfC's template defaults.
    track: the loaded Track of DR_WORLD_NAME (loaded by name when None). prefix, bucket: where the model
    lives (default DR_LOCAL_S3_MODEL_PREFIX / DR_LOCAL_S3_BUCKET; an upload passes its target); every S3
    key points inside that prefix (DR_LOCAL_S3_METRICS_PREFIX counts only for the run's own prefix).
    Values are strings, except TRACK_DIRECTION_CLOCKWISE (a bool, present only for two-direction tracks)."""
    v = {**_DEFAULTS, **dr_values(values)}
    own = _text(v["DR_LOCAL_S3_MODEL_PREFIX"]).strip("/")
    prefix = (prefix or own).strip("/")
    bucket = bucket or _text(v["DR_LOCAL_S3_BUCKET"])
    reverse = _truthy(v["DR_TRAIN_REVERSE_DIRECTION"])
    world, clockwise = track_direction(_text(v["DR_WORLD_NAME"]), reverse, track)
    car = _text(v["DR_CAR_NAME"])
    metrics_prefix = f"{prefix}/metrics"
    if prefix == own and v.get("DR_LOCAL_S3_METRICS_PREFIX"):
        metrics_prefix = _text(v["DR_LOCAL_S3_METRICS_PREFIX"]).strip("/")
    params: dict[str, str | bool] = {
        "AWS_REGION": _text(v["DR_AWS_APP_REGION"]),
        "JOB_TYPE": "TRAINING",
        "WORLD_NAME": world,
        "RACE_TYPE": _text(v["DR_RACE_TYPE"]),
        "CAR_NAME": car,
        "DISPLAY_NAME": _text(v.get("DR_DISPLAY_NAME") or car),
        "RACER_NAME": _text(v.get("DR_RACER_NAME") or car),
        "BODY_SHELL_TYPE": _text(v["DR_CAR_BODY_SHELL_TYPE"]),
        "CAR_COLOR": _text(v["DR_CAR_COLOR"]),
        "SAGEMAKER_SHARED_S3_BUCKET": bucket,
        "SAGEMAKER_SHARED_S3_PREFIX": prefix,
        "METRICS_S3_BUCKET": bucket,
        "METRICS_S3_OBJECT_KEY": f"{metrics_prefix}/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": f"{prefix}/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": f"{prefix}/reward_function.py",
        "SIMTRACE_S3_BUCKET": bucket,
        "SIMTRACE_S3_PREFIX": prefix,
        "NUM_WORKERS": "1",
        "REVERSE_DIR": _text(reverse and clockwise is None),
        "CHANGE_START_POSITION": _text(_truthy(v["DR_TRAIN_CHANGE_START_POSITION"])),
        "ALTERNATE_DRIVING_DIRECTION": _text(_truthy(v["DR_TRAIN_ALTERNATE_DRIVING_DIRECTION"])),
        "START_POSITION_OFFSET": _text(v["DR_TRAIN_START_POSITION_OFFSET"]),
        "ROUND_ROBIN_ADVANCE_DIST": _text(v["DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST"]),
        "MIN_EVAL_TRIALS": _text(v["DR_TRAIN_MIN_EVAL_TRIALS"]),
        "BEST_MODEL_METRIC": _text(v["DR_TRAIN_BEST_MODEL_METRIC"]),
        "ENABLE_DOMAIN_RANDOMIZATION": _text(_truthy(v["DR_ENABLE_DOMAIN_RANDOMIZATION"])),
    }
    params.update(race_type_params(v))
    if clockwise is not None:
        params["TRACK_DIRECTION_CLOCKWISE"] = clockwise
    return params


def _positions(value: Any) -> list[str]:
    """DR_OA_OBJECT_POSITIONS as DRfC writes OBJECT_POSITIONS: the "ndist,lane" strings between the semicolons
    (a RunConfig's parsed pairs are written back the same way)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split(";") if value != "" else []
    return [f"{p[0]},{p[1]}" if isinstance(p, list | tuple) else str(p) for p in value]


def race_type_params(values: Any, *, evaluation: bool = False) -> dict[str, str | list[str]]:
    """The params yaml keys of the run's race type, values as DRfC's prepare-config.py writes them.

    values: as for `droa_training_params` (DR_* names or RunConfig field names, a RunConfig or a Job).
    Only the selected race type's keys (none for TIME_TRIAL and HEAD_TO_MODEL); a variable set nowhere
    gets DRfC's fallback (RACE_YAML). `evaluation`: also RESET_BEHIND_DIST, which DRfC's evaluation
    script writes for every race type."""
    v = dr_values(values)
    race = _text(v.get("DR_RACE_TYPE", "TIME_TRIAL")).strip().upper()
    params: dict[str, str | list[str]] = {}
    if evaluation:
        params["RESET_BEHIND_DIST"] = _text(v.get("DR_EVAL_RESET_BEHIND_DIST", "1.0"))
    for key, (dr, fallback) in RACE_YAML.get(race, {}).items():
        params[key] = _text(v[dr]) if dr in v else fallback
    if race == "OBJECT_AVOIDANCE":
        positions = _positions(v.get("DR_OA_OBJECT_POSITIONS"))
        if positions:
            params["OBJECT_POSITIONS"] = positions
            params["NUMBER_OF_OBSTACLES"] = str(len(positions))
    return params


def head_to_model_params(params: Mapping[str, Any], values: Any, timestamp: int) -> dict[str, Any]:
    """Evaluation params with a HEAD_TO_MODEL race's opponent added, as DRfC's evaluation/prepare-config.py
    adds it: the opponent's prefix, bucket, simtrace, metrics key (`<DR_EVAL_OPP_S3_METRICS_PREFIX, else
    <opponent prefix>/metrics>/EvaluationMetrics-<timestamp>.json`), names and body shell appended as the
    second entry of each list, VIDEO_JOB_TYPE EVALUATION, CAR_COLOR [Purple, Orange] and MODEL_NAME = the
    display names. The mp4 prefix is `<opponent prefix>/mp4` (DRfC reads a misspelt variable there and
    writes 'bucket/mp4'). `params` is not changed; returns a copy (unchanged for other race types)."""
    v = dr_values(values)
    out = {k: list(x) if isinstance(x, list | tuple) else x for k, x in params.items()}
    if _text(v.get("DR_RACE_TYPE", "TIME_TRIAL")).strip().upper() != "HEAD_TO_MODEL":
        return out
    bucket = _text(v.get("DR_LOCAL_S3_BUCKET", "bucket"))
    prefix = _text(v.get("DR_EVAL_OPP_S3_MODEL_PREFIX", "rl-deepracer-sagemaker"))
    metrics = _text(v.get("DR_EVAL_OPP_S3_METRICS_PREFIX") or f"{prefix}/metrics")
    car = _text(v.get("DR_EVAL_OPP_CAR_NAME", "racer1"))

    def add(key: str, value: str) -> None:
        out[key] = [*out.get(key, []), value]

    add("MODEL_S3_PREFIX", prefix)
    add("MODEL_S3_BUCKET", bucket)
    add("SIMTRACE_S3_BUCKET", bucket)
    add("SIMTRACE_S3_PREFIX", prefix)
    add("METRICS_S3_BUCKET", bucket)
    add("METRICS_S3_OBJECT_KEY", f"{metrics}/EvaluationMetrics-{timestamp}.json")
    if _truthy(v.get("DR_EVAL_SAVE_MP4", False)):
        add("MP4_S3_BUCKET", bucket)
        add("MP4_S3_OBJECT_PREFIX", f"{prefix}/mp4")
    add("DISPLAY_NAME", _text(v.get("DR_EVAL_OPP_DISPLAY_NAME") or car))
    add("RACER_NAME", _text(v.get("DR_EVAL_OPP_RACER_NAME") or car))
    add("BODY_SHELL_TYPE", _text(v.get("DR_EVAL_OPP_CAR_BODY_SHELL_TYPE", "deepracer")))
    out["VIDEO_JOB_TYPE"] = "EVALUATION"
    out["CAR_COLOR"] = ["Purple", "Orange"]
    out["MODEL_NAME"] = list(out["DISPLAY_NAME"])
    return out


# ----- the YAML text -----

def _quoted(s: str) -> str:
    if s.isprintable() and s.isascii():
        return "'" + s.replace("'", "''") + "'"
    return json.dumps(s)  # a double-quoted YAML scalar with escapes, as PyYAML falls back to


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return f"!!bool '{'true' if v else 'false'}'"
    if isinstance(v, int):
        return f"!!int '{v}'"
    if isinstance(v, float):
        return f"!!float '{v!r}'"
    if v is None:
        return "!!null ''"
    return _quoted(str(v))


def training_params_yaml(params: Mapping[str, Any]) -> str:
    """The YAML text, as DRfC's prepare-config.py dumps it (see the module docstring)."""
    lines = ["---"]
    for k in sorted(params):
        v = params[k]
        if isinstance(v, list | tuple):
            lines.append(f"{_quoted(str(k))}:")
            lines += [f"- {_scalar(x)}" for x in v]
        else:
            lines.append(f"{_quoted(str(k))}: {_scalar(v)}")
    return "\n".join(lines) + "\n"


yaml_text = training_params_yaml  # the name other modules know it by


def _unquote(text: str) -> Any:
    t = text.strip()
    tag = None
    if t.startswith("!!"):
        tag, _, t = t.partition(" ")
        t = t.strip()
    if len(t) >= 2 and t[0] == t[-1] == "'":
        value: Any = t[1:-1].replace("''", "'")
    elif len(t) >= 2 and t[0] == t[-1] == '"':
        try:
            value = json.loads(t)
        except json.JSONDecodeError:
            value = t[1:-1]
    else:
        value = t.split(" #", 1)[0].strip()
        if tag is None:
            low = value.lower()
            if low in ("true", "yes", "on", "false", "no", "off"):
                return low in ("true", "yes", "on")
            if low in ("null", "~", ""):
                return None
            return int(value) if re.fullmatch(r"[-+]?\d+", value) else value
    if tag == "!!bool":
        return _truthy(value)
    if tag == "!!int":
        return int(value)
    if tag == "!!float":
        return float(value)
    return value


def _split_key(line: str) -> tuple[str, str] | None:
    """`key: value` with a plain, single- or double-quoted key."""
    s = line.strip()
    if s[:1] in ("'", '"'):
        q = s[0]
        i = 1
        while i < len(s):
            if s[i] == q and q == "'" and s[i + 1:i + 2] == "'":
                i += 2
                continue
            if s[i] == q and (q == "'" or s[i - 1] != "\\"):
                break
            i += 1
        key, rest = _unquote(s[:i + 1]), s[i + 1:].lstrip()
        return (str(key), rest[1:].strip()) if rest.startswith(":") else None
    key, sep, rest = s.partition(":")
    return (key.strip(), rest.strip()) if sep else None


def _open_quote(text: str) -> bool:
    """Whether a quoted value continues on the next line (PyYAML folds long values)."""
    t = text.strip()
    if t.startswith("!!"):
        t = t.partition(" ")[2].strip()
    if not t or t[0] not in "'\"":
        return False
    body = t[1:].replace("''", "") if t[0] == "'" else t[1:].replace('\\"', "")
    return t[0] not in body


def parse_training_params(text: str) -> dict[str, Any]:
    """A flat training_params.yaml (DRfC's quoted style, drlocal's `KEY: "value"`, plain YAML) as a dict."""
    out: dict[str, Any] = {}
    key: str | None = None
    pending = ""
    for raw in text.splitlines():
        if pending:  # continuation of a folded quoted value
            pending += " " + raw.strip()
            if not _open_quote(pending):
                out[key], pending = _unquote(pending), ""  # type: ignore[index]
            continue
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#") or line.strip() in ("---", "..."):
            continue
        if line.lstrip().startswith("- ") and key is not None:
            items = out[key] if isinstance(out.get(key), list) else []
            out[key] = [*items, _unquote(line.lstrip()[2:])]
            continue
        kv = _split_key(line)
        if kv is None:
            continue
        key, value = kv
        if _open_quote(value):
            pending = value
        else:
            out[key] = _unquote(value) if value else None
    return out


def run_values_from_training_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """DR_* values that reproduce a training_params.yaml through `droa_training_params`."""
    values = {dr: params[k] for k, dr in YAML_TO_DR.items() if params.get(k) is not None}
    if isinstance(values.get("DR_OA_OBJECT_POSITIONS"), list):
        values["DR_OA_OBJECT_POSITIONS"] = ";".join(str(p) for p in values["DR_OA_OBJECT_POSITIONS"])
    clockwise = params.get("TRACK_DIRECTION_CLOCKWISE")
    world = str(params.get("WORLD_NAME") or "")
    if clockwise is not None and world and not _SUFFIX.search(world):
        from drlocal.tracks import track_names

        named = f"{world}_{'cw' if _truthy(clockwise) else 'ccw'}"
        if named in track_names():  # the direction is in the name; nothing left to reverse
            values["DR_WORLD_NAME"], values["DR_TRAIN_REVERSE_DIRECTION"] = named, False
    return values
