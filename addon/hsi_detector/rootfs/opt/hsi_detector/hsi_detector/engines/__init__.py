"""Detection engines behind one small interface, and the factory that picks one."""

from hsi_detector.engines.base import Detection, Engine, EngineError, build_engine

__all__ = ["Detection", "Engine", "EngineError", "build_engine"]
