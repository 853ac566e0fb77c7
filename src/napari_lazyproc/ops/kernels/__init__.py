"""Fast CPU kernels for the "fast" precision (OpenCV), one module per family."""
