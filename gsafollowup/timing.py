"""Stage timings of one request, answered in a Server-Timing header when SERVER_TIMING is on.

Off by default: the header tells anyone how long each stage took. The upload benchmark turns
it on in its own stack to print where an upload's time goes (request parsing, hashtag check,
read, cone, calibrate, plot, database, kept file). Stages that never run cost one ContextVar
lookup; nothing is recorded outside a timed request.
"""

import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings

_stages: ContextVar[dict[str, float] | None] = ContextVar("server_timing_stages", default=None)


@contextmanager
def stage(name: str):
    """Add the time spent in the block to the current request's stage ``name`` (if timed)."""
    stages = _stages.get()
    if stages is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        stages[name] = stages.get(name, 0.0) + time.perf_counter() - started


def header_value(stages: dict[str, float], total: float) -> str:
    """``name;dur=ms`` per stage (RFC: Server-Timing), then the whole request as ``total``."""
    parts = [f"{name};dur={1000 * seconds:.2f}" for name, seconds in stages.items()]
    return ", ".join([*parts, f"total;dur={1000 * total:.2f}"])


class ServerTimingMiddleware:
    """First in the chain: times the request and every stage inside it, answers the header."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not settings.SERVER_TIMING:
            return self.get_response(request)
        stages: dict[str, float] = {}
        token = _stages.set(stages)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            _stages.reset(token)
        response["Server-Timing"] = header_value(stages, time.perf_counter() - started)
        return response
