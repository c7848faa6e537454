"""Simulation with ground truth: chest radiograph phantoms with lung masks (``cxr``), multi-contrast brain
phantoms with CBF (``brain``), and the radiograph degradations that make enhancement pairs (``degrade``)."""
