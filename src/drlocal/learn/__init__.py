"""Learning: the DeepRacer networks, Clipped PPO and SAC, and the iteration loop."""
