"""Views for people: cameras, overlays, the live viewer, MP4s and replays (the model's own camera is `sensors`)."""
