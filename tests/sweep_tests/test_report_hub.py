"""The report hub: an answer given with the next take reaches the waiting reporter, so the
coordinator spends one actor call a report instead of two."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_an_answer_sent_with_the_next_take_releases_the_reporter(ray_local):
    import ray

    from sweep.backends.ray_actors import new_hub

    hub = new_hub()
    try:
        waiting = hub.report.remote(3, 0, {"score": 0.5}, [])
        taken = ray.get(hub.take.remote(10.0))
        assert [(number, epoch) for number, epoch, *_ in taken] == [(3, 0)]
        ready, _ = ray.wait([waiting], timeout=0.2)
        assert not ready  # the reporter waits for its answer
        assert ray.get(hub.take.remote(0.1, ((3, True),))) == []
        assert ray.get(waiting, timeout=10) is True
    finally:
        ray.kill(hub, no_restart=True)
