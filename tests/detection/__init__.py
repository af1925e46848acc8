"""Tests of the detectors: URLs, answer parsing, remote clients, local engines, model files."""
