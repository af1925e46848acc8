"""Result shapes of the API dialects: native, DeepStack/CodeProject.AI, HSI RT-DETR service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hsi_detector.engines.base import Engine
    from hsi_detector.service import ImageResult


def _r(value: float, digits: int = 2) -> float:
    return round(value, digits)


def native(result: ImageResult, engine: Engine) -> dict[str, Any]:
    """`POST /v1/detect` (and each entry of /v1/detect/batch)."""
    w, h = result.width, result.height
    return {
        "detections": [
            {
                "label": d.label,
                "class_id": d.class_id,
                "confidence": _r(d.confidence, 4),
                "box": {
                    "x_min": _r(d.x_min),
                    "y_min": _r(d.y_min),
                    "x_max": _r(d.x_max),
                    "y_max": _r(d.y_max),
                },
                "box_normalized": {
                    "x_min": _r(d.x_min / w, 5),
                    "y_min": _r(d.y_min / h, 5),
                    "x_max": _r(d.x_max / w, 5),
                    "y_max": _r(d.y_max / h, 5),
                },
            }
            for d in result.detections
        ],
        "image": {"width": w, "height": h},
        "timings_ms": {
            "queue": _r(result.queue_ms),
            "decode": _r(result.decode_ms),
            "inference": _r(result.inference_ms),
            "total": _r(result.total_ms),
        },
        "model": engine.name,
        "device": engine.device,
    }


def deepstack(result: ImageResult) -> dict[str, Any]:
    """`POST /v1/vision/detection`, as DeepStack and CodeProject.AI answer it."""
    predictions = [
        {
            "label": d.label,
            "confidence": _r(d.confidence, 4),
            "x_min": round(d.x_min),
            "y_min": round(d.y_min),
            "x_max": round(d.x_max),
            "y_max": round(d.y_max),
        }
        for d in result.detections
    ]
    return {
        "success": True,
        "predictions": predictions,
        "count": len(predictions),
        "inferenceMs": round(result.inference_ms),
        "processMs": round(result.total_ms),
        "code": 200,
    }


def rtdetr(result: ImageResult) -> dict[str, Any]:
    """`POST /detect` (and each entry of /detect/batch), as the HSI RT-DETR service answers it."""
    return {
        "detections": [
            {
                "class": d.label,
                "confidence": _r(d.confidence, 4),
                "bbox": {
                    "x": round(d.x_min),
                    "y": round(d.y_min),
                    "width": round(d.x_max - d.x_min),
                    "height": round(d.y_max - d.y_min),
                },
            }
            for d in result.detections
        ],
        "inference_time_ms": _r(result.inference_ms),
        "image_width": result.width,
        "image_height": result.height,
    }
