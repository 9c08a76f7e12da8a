"""Task streams: :class:`Task`, :class:`Stream`, the stream registry and the built-in streams."""

# Built-in streams register themselves on import.
from cl_nlp.streams import benchmarks, clinc, intent, topic, user  # noqa: E402,F401  (registration side effect)
from cl_nlp.streams.registry import build_stream, get_stream_spec, register_stream, stream_names, stream_options
from cl_nlp.streams.task import SCENARIOS, Scenario, Stream, Task
from cl_nlp.streams.validation import check_stream

__all__ = ["SCENARIOS", "Scenario", "Stream", "Task", "build_stream", "check_stream", "get_stream_spec", "register_stream",
           "stream_names", "stream_options"]
