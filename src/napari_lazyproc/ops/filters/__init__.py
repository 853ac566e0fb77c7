"""Declarations of the filters, morphology, thresholds, intensity, labels and
user-kernel operations."""
