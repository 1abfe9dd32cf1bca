"""Solvers: one module per optimisation method, each a function of (parameters, data, settings).

Solvers import :mod:`softmax_xp.functional` and nothing above it.
"""
