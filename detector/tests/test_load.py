"""32 concurrent cameras against the real TFLite server: every answer arrives, for its image."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp

from tests.support import BUS, ZIDANE, ServerProcess, resized

CLIENTS = 32
REQUESTS_PER_CLIENT = 10


def _signature(body: dict[str, object]) -> tuple[object, ...]:
    dets = body["detections"]
    assert isinstance(dets, list)
    return tuple((d["label"], round(d["box"]["x_min"])) for d in dets)


async def test_32_clients_nothing_lost_or_mismatched(
    tflite_server: ServerProcess, client: aiohttp.ClientSession
) -> None:
    # Each client sends its own image: a photo scaled to its own width, so answers are traceable.
    images = [resized(BUS if i % 2 else ZIDANE, 320 + 8 * i) for i in range(CLIENTS)]
    url = tflite_server.url + "/v1/detect"
    headers = {"Content-Type": "image/jpeg"}
    expected = []
    for data in images:  # what each image gives when alone
        async with client.post(url, data=data, headers=headers) as resp:
            expected.append(await resp.json())

    latencies: list[float] = []
    failures: list[str] = []

    async def camera(index: int) -> None:
        for _ in range(REQUESTS_PER_CLIENT):
            start = time.perf_counter()
            async with client.post(url, data=images[index], headers=headers) as resp:
                body = await resp.json()
                status = resp.status
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append(f"{index}: {status}")
            elif body["image"] != expected[index]["image"]:
                failures.append(f"{index}: got image {body['image']}")
            elif _signature(body) != _signature(expected[index]):
                failures.append(f"{index}: detections differ")

    start = time.perf_counter()
    await asyncio.gather(*(camera(i) for i in range(CLIENTS)))
    wall = time.perf_counter() - start
    assert failures == []
    assert len(latencies) == CLIENTS * REQUESTS_PER_CLIENT
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\nload: {len(latencies)} requests from {CLIENTS} clients in {wall:.2f} s "
        f"({len(latencies) / wall:.1f} images/s), p50 {cuts[49] * 1000:.0f} ms, "
        f"p99 {cuts[98] * 1000:.0f} ms"
    )
