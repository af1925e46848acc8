"""Test support code: real servers speaking real protocols on 127.0.0.1 (ONVIF camera simulator)."""
