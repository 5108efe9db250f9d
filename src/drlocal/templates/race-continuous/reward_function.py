"""drlocal race template: a reward that pays speed, so faster laps always earn more.

DeepRacer calls reward_function(params) 15 times per simulated second and PPO maximises the discounted sum
over an episode. Reward functions are stateless, so "how fast" is the average speed of the episode so far:
distance along the track over elapsed time. Paying (average speed)² per step makes a whole lap's reward grow
with speed (steps x v² is proportional to lap length x v), so driving slowly never pays more; the lap bonus
is larger for fewer steps. Every key used exists in the console's and the simapp's params.
"""


def reward_function(params):
    # Off the track the episode ends anyway; give (almost) nothing so leaving is never worth it.
    if params["is_offtrack"] or not params["all_wheels_on_track"]:
        return 1e-3
    # Elapsed simulated time: params["steps"] counts from 1 at 15 steps per second.
    seconds = max(params["steps"] - 1.0, 1.0) / 15.0
    # Distance along the centre line so far, from progress (%) and the track length (m).
    distance = max(params["progress"], 0.0) / 100.0 * params["track_length"]
    # Average speed of the episode so far [m/s], capped at the car's 4 m/s so a start-line glitch cannot explode.
    avg_speed = min(distance / seconds, 4.0)
    # A mild pull towards the centre (1.0 on the line, 0.5 at the edge): it keeps early, random driving on the
    # track without teaching the car to slow down for the line.
    centred = 1.0 - 0.5 * min(params["distance_from_center"] / (0.5 * params["track_width"]), 1.0)
    # The pace term: 0..1, squared so that going from 3 to 3.5 m/s pays more than going from 1 to 1.5 m/s.
    reward = centred * (avg_speed / 4.0) ** 2
    # The lap bonus, once, at the finish: 10 x (112.5 steps / steps taken), i.e. 10 for a 7.5 s lap, more for faster.
    if params["progress"] >= 100.0:
        reward += 10.0 * (15.0 * 7.5 / max(params["steps"], 1.0))
    # Never exactly zero: PPO's advantages then still see a difference between bad and worse.
    return float(reward + 1e-3)
