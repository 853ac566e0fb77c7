"""Whole-input statistics: histograms, percentiles, global thresholds (exact jobs or samples)."""
