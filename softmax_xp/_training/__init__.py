"""The training run: its state, its History, its callbacks and the one epoch loop."""
