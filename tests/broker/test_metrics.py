"""Broker metrics through prometheus_client: valid exposition text, one registry per broker."""

from __future__ import annotations

from dataclasses import fields

from prometheus_client.parser import text_string_to_metric_families

from broker.metrics import COUNTER_METRICS, Counters, Histogram, render


def _render(counters: Counters, latency: Histogram, **gauges: object) -> str:
    return render(
        tasks_by_state=gauges.get("tasks", {"queued": 2, "running": 1}),  # type: ignore[arg-type]
        workers_by_device=gauges.get("workers", {"cpu": 2, 'cu"da\n0': 1}),  # type: ignore[arg-type]
        queue_depth=3,
        counters=counters,
        dispatch_latency=latency,
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_counter_has_a_metric() -> None:
    assert {f.name for f in fields(Counters)} == set(COUNTER_METRICS)


def test_render_is_valid_prometheus_text_with_integer_counts() -> None:
    counters = Counters(frames_in=1_234_567, bad_frames=1050, workers_lost=1)
    latency = Histogram()
    latency.observe_many([0.0001, 0.003, 0.003, 7.0])
    text = _render(counters, latency)
    samples = _samples(text)
    assert samples[("shift_tasks", (("state", "queued"),))] == 2
    assert samples[("shift_workers", (("device", 'cu"da\n0'),))] == 1
    assert samples[("shift_frames_received_total", ())] == 1_234_567
    assert samples[("shift_dispatch_latency_seconds_bucket", (("le", "0.0005"),))] == 1
    assert samples[("shift_dispatch_latency_seconds_bucket", (("le", "0.005"),))] == 3
    assert samples[("shift_dispatch_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("shift_dispatch_latency_seconds_count", ())] == 4
    for line in (
        "shift_frames_received_total 1234567",
        "shift_bad_frames_total 1050",
        "shift_workers_lost_total 1",
        "shift_queue_depth 3",
        'shift_dispatch_latency_seconds_bucket{le="+Inf"} 4',
    ):
        assert line in text.splitlines(), line


def test_two_brokers_in_one_process_keep_their_own_metrics() -> None:
    first, second = (Counters(), Histogram()), (Counters(), Histogram())
    first[0].frames_in += 5
    first[1].observe_many([0.01])
    one, two = _samples(_render(*first)), _samples(_render(*second))
    assert one[("shift_frames_received_total", ())] == 5
    assert two[("shift_frames_received_total", ())] == 0
    assert one[("shift_dispatch_latency_seconds_count", ())] == 1
    assert two[("shift_dispatch_latency_seconds_count", ())] == 0
    assert _samples(_render(*first)) == one  # rendering twice registers nothing twice
