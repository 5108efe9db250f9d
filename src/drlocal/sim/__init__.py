"""The DeepRacer world in motion: car dynamics, reward params and episode logic, batched over cars."""
