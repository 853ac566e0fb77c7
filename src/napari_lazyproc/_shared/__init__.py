"""Helpers every layer of the core shares: regions, the worker pool, the source protocol.

Nothing here imports napari, Qt or another package of ours.
"""
