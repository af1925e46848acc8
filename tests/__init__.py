"""Tests of the Home Security Intelligence integration."""
