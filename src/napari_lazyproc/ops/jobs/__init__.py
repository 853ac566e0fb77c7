"""Explicit jobs over a whole input: global labeling, drift estimation."""
