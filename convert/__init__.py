"""Workstation side of journey 2: calibration set, TFLite conversion, float/int8 parity, Edge TPU build."""
