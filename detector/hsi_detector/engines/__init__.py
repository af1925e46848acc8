"""Detection engines behind one small interface, and the factory that picks one."""

from hsi_detector.engines.base import (
    Detection,
    Engine,
    EngineError,
    auto_batch_size,
    build_engine,
)

__all__ = ["Detection", "Engine", "EngineError", "auto_batch_size", "build_engine"]
