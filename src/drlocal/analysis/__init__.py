"""Tools that look at a reward function, a run or a model from the outside."""
