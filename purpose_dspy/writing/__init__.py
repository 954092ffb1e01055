"""Constrained writing: tasks with machine-checkable constraints, their verifier, the rubric and the archive."""
