"""Dependency resolution: policy, solver, explanations and the lockfile."""
