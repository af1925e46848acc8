"""hsi_detector: a batched object-detection HTTP server that many cameras share (the HSI add-on).

Installed plain it is a light library (numpy, pillow): the engines, image decoding and settings
that the Home Assistant integration's local detector reuses; the `server`, `tflite` and
`ultralytics` extras add the server and the model runtimes.
"""

__version__ = "0.2.0"
