"""Race types and their settings (contract §11; simapp WorldConfig keys, DRfC `DR_OA_*` / `DR_H2B_*` names).

`RaceOptions` holds everything that decides which objects share the track with the agent and what a
collision costs. It is plain data: `drlocal.sim.objects` turns it into obstacles and bot cars, the
config layer builds it from `run.env`, and the Gymnasium envs take the same fields as keywords.
Hand-written because it is DeepRacer-specific.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: RACE_TYPE values. F1 / virtual events (race clock, 10 s countdown) are not local training formats.
TIME_TRIAL = "TIME_TRIAL"
OBJECT_AVOIDANCE = "OBJECT_AVOIDANCE"
HEAD_TO_BOT = "HEAD_TO_BOT"
HEAD_TO_MODEL = "HEAD_TO_MODEL"
RACE_TYPES = (TIME_TRIAL, OBJECT_AVOIDANCE, HEAD_TO_BOT, HEAD_TO_MODEL)

#: OBSTACLE_TYPE values (simapp `agent_ctrl/constants.py::OBSTACLE_TYPE_LIST`).
OBSTACLE_TYPES = ("box_obstacle", "deepracer_box_obstacle", "amazon_box_obstacle")

#: Collision footprints used by markov, (length along the heading, width across) [m]
#: (`track_geom/constants.py::ObstacleDimensions`: BOX (0.4 wide, 0.5 long), BOT_CAR (0.1961 wide, 0.32352 long)).
BOX_FOOTPRINT = (0.5, 0.4)
CAR_FOOTPRINT = (0.32352, 0.1961)
#: Objects closer than this along the track to a start / reset position move the car to the other lane [m].
CLOSEST_OBJ_GAP = 1.0
#: Multi-car evaluation starts: car i starts this far behind the line, even cars outer lane, odd inner [m].
START_POS_OFFSET = 0.75


@dataclass(frozen=True)
class RaceOptions:
    """What shares the track with the agent (simapp WorldConfig names; DRfC variables in brackets).

    Attributes:
        race_type: TIME_TRIAL, OBJECT_AVOIDANCE, HEAD_TO_BOT or HEAD_TO_MODEL [DR_RACE_TYPE].
        number_of_obstacles: boxes (or static bot cars) of an object-avoidance race [DR_OA_NUMBER_OF_OBSTACLES].
        min_distance_between_obstacles: start of the linspace and the neighbour gap of random placement, in
            **percent of the track length** (simapp quirk: re-divided at every episode reset, so it shrinks
            towards 0; see `objects.obstacle_layout`) [DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES].
        randomize_obstacle_locations: draw positions between neighbours and random lanes at every episode
            reset [DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS].
        is_obstacle_bot_car: static DeepRacer cars instead of boxes [DR_OA_IS_OBSTACLE_BOT_CAR].
        obstacle_type: one of OBSTACLE_TYPES (only the look differs) [DR_OA_OBSTACLE_TYPE].
        object_positions: fixed (ndist in [0, 1], lane) pairs; lane -1 = outer lane, anything else = inner.
            Overrides the number and randomisation [DR_OA_OBJECT_POSITIONS, "ndist,lane;ndist,lane"].
        number_of_bot_cars: moving bot cars of a head-to-bot race [DR_H2B_NUMBER_OF_BOT_CARS].
        min_distance_between_bot_cars: first bot's centre-line distance and neighbour gap, **metres**
            [DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS].
        randomize_bot_car_locations: random positions between neighbours and random lanes
            [DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS].
        bot_car_speed: constant speed of the bots along the centre-line parameter [m/s] [DR_H2B_BOT_CAR_SPEED].
        is_lane_change: bots change lanes [DR_H2B_IS_LANE_CHANGE].
        lower_lane_change_time, upper_lane_change_time: time between lane changes ~ U(lower, upper) [s]
            [DR_H2B_LOWER/UPPER_LANE_CHANGE_TIME].
        lane_change_distance: centre-line distance one lane change covers [m] [DR_H2B_LANE_CHANGE_DISTANCE].
        penalty_seconds: all bots freeze this long when one rear-ends the agent [s] [DR_H2B_BOT_CAR_PENALTY].
        reset_behind_dist: after a crash into an obstacle (or a reset near one) the car is placed this far
            behind it, on the other lane [m] [DR_EVAL_RESET_BEHIND_DIST].
        enable_mercy_reset, reset_ahead_dist, max_resets_after_crash: after `max_resets_after_crash` resets at
            the same obstacle, place the car `reset_ahead_dist` ahead of it instead (ENABLE_MERCY_RESET etc.).
        done_condition: HEAD_TO_MODEL: the race ends when "any" car or "all" cars are done (DONE_CONDITION).
        seed: random placement / lane-change draws; None = fresh entropy (the simapp seeds nothing).
    """

    race_type: str = TIME_TRIAL
    number_of_obstacles: int = 6
    min_distance_between_obstacles: float = 2.0
    randomize_obstacle_locations: bool = False
    is_obstacle_bot_car: bool = False
    obstacle_type: str = "box_obstacle"
    object_positions: tuple[tuple[float, int], ...] = field(default_factory=tuple)
    number_of_bot_cars: int = 3
    min_distance_between_bot_cars: float = 2.0
    randomize_bot_car_locations: bool = False
    bot_car_speed: float = 0.2
    is_lane_change: bool = False
    lower_lane_change_time: float = 3.0
    upper_lane_change_time: float = 5.0
    lane_change_distance: float = 1.0
    penalty_seconds: float = 2.0
    reset_behind_dist: float = 1.0
    enable_mercy_reset: bool = False
    reset_ahead_dist: float = 1.0
    max_resets_after_crash: int = 3
    done_condition: str = "any"
    seed: int | None = None

    def __post_init__(self) -> None:
        rt = str(self.race_type).strip().upper()
        object.__setattr__(self, "race_type", rt)
        if rt not in RACE_TYPES:
            raise ValueError(f"race_type {self.race_type!r}: expected one of {', '.join(RACE_TYPES)}")
        if self.obstacle_type not in OBSTACLE_TYPES:
            raise ValueError(f"obstacle_type {self.obstacle_type!r}: expected one of {', '.join(OBSTACLE_TYPES)}")
        if self.done_condition not in ("any", "all"):
            raise ValueError(f"done_condition {self.done_condition!r}: expected 'any' or 'all'")
        pos = tuple((float(nd), int(lane)) for nd, lane in self.object_positions)
        object.__setattr__(self, "object_positions", pos)
        checks = [
            (self.number_of_obstacles >= 0, "number_of_obstacles must be >= 0"),
            (self.number_of_bot_cars >= 0, "number_of_bot_cars must be >= 0"),
            (self.min_distance_between_obstacles >= 0, "min_distance_between_obstacles must be >= 0"),
            (self.min_distance_between_bot_cars >= 0, "min_distance_between_bot_cars must be >= 0"),
            (self.bot_car_speed > 0, "bot_car_speed must be > 0 m/s (the lane change lasts distance / speed)"),
            (0 <= self.lower_lane_change_time <= self.upper_lane_change_time,
             "lower_lane_change_time must be >= 0 and <= upper_lane_change_time"),
            (self.lane_change_distance > 0, "lane_change_distance must be > 0"),
            (self.penalty_seconds >= 0, "penalty_seconds must be >= 0"),
            (self.reset_behind_dist >= 0 and self.reset_ahead_dist >= 0, "reset distances must be >= 0"),
            (self.max_resets_after_crash >= 1, "max_resets_after_crash must be >= 1"),
            (all(0.0 <= nd <= 1.0 for nd, _ in pos), "object_positions ndist values must lie in [0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    @property
    def n_obstacles(self) -> int:
        """Obstacles actually placed (OBJECT_POSITIONS overrides NUMBER_OF_OBSTACLES)."""
        if self.race_type != OBJECT_AVOIDANCE:
            return 0
        return len(self.object_positions) if self.object_positions else int(self.number_of_obstacles)

    @property
    def n_bots(self) -> int:
        """Moving bot cars."""
        return int(self.number_of_bot_cars) if self.race_type == HEAD_TO_BOT else 0

    @property
    def obstacle_kind(self) -> str:
        """What an obstacle looks like: an OBSTACLE_TYPES box or 'bot_car'."""
        return "bot_car" if self.is_obstacle_bot_car else self.obstacle_type


def parse_object_positions(text: str) -> tuple[tuple[float, int], ...]:
    """DRfC's DR_OA_OBJECT_POSITIONS "ndist,lane;ndist,lane" (semicolon-separated pairs, lane -1 = outer)."""
    out: list[tuple[float, int]] = []
    for part in str(text).split(";"):
        part = part.strip().strip('"').strip("'")
        if not part:
            continue
        bits = [b.strip() for b in part.split(",")]
        if len(bits) != 2:
            raise ValueError(f"{part!r} is not 'ndist,lane' (e.g. '0.25,1;0.6,-1')")
        try:
            out.append((float(bits[0]), int(float(bits[1]))))
        except OverflowError:  # int(inf): a ValueError like every other malformed value
            raise ValueError(f"{part!r}: the lane must be a finite whole number") from None
    return tuple(out)
