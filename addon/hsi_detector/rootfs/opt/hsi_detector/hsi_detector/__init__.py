"""hsi_detector: a batched object-detection HTTP server that many cameras share (the HSI add-on)."""

__version__ = "0.1.0"
