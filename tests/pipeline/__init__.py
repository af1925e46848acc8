"""Tests of the pure-Python detection pipeline (filters, tracker, state)."""
