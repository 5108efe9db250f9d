def reward_function(params):
    """Follow the centre line, keep all wheels on the track, and prefer speed on straights.

    A console-compatible DeepRacer reward function: it uses only the documented `params` keys.
    """
    if not params["all_wheels_on_track"] or params["is_offtrack"]:
        return 1e-3
    half = 0.5 * params["track_width"]
    centred = max(0.0, 1.0 - params["distance_from_center"] / half)
    steering = abs(params["steering_angle"])
    smooth = 1.0 if steering < 15 else 0.8
    return float(centred * smooth)
