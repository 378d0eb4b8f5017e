"""fer-edge device runtime: everything that runs on the Pi (numpy, OpenCV, a TFLite interpreter; no TensorFlow)."""

__version__ = "0.1.0"
