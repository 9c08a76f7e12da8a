"""Plain-text descriptions of streams for `cl-nlp streams` and `cl-nlp streams show NAME`."""

from __future__ import annotations

from cl_nlp.options import describe_options
from cl_nlp.streams.registry import StreamSpec, build_stream
from cl_nlp.streams.task import Stream


def sizes_line(stream: Stream) -> str:
    """``"5 tasks, 150 classes; train 6000, test 2250"`` (summed over tasks)."""
    total: dict[str, int] = {}
    for task in stream.tasks:
        for split, n in task.sizes().items():
            total[split] = total.get(split, 0) + n
    splits = ", ".join(f"{split} {n}" for split, n in total.items())
    return f"{len(stream)} tasks, {stream.num_classes} classes; {splits}"


def spec_lines(spec: StreamSpec) -> list[str]:
    """The listing of one registered stream: summary, sizes with default options, options."""
    lines = [f"{spec.name:<15} {spec.scenario:<19} {spec.summary}"]
    if spec.source == "offline":
        lines.append(f"    defaults: {sizes_line(build_stream(spec.name))}")
    elif spec.source == "hub":
        lines.append(f"    sizes: downloads from the hub; `cl-nlp streams show {spec.name}` (or --set hub_root=DIR offline)")
    else:
        lines.append("    sizes: from your file; `cl-nlp streams show my_stream.yaml` checks and describes it")
    for opt, tp, default, help_text in describe_options(spec.options_cls):
        lines.append(f"    {opt} ({tp}, default {default!r})" + (f": {help_text}" if help_text else ""))
    return lines


def stream_lines(stream: Stream, max_classes: int = 8) -> list[str]:
    """Every task with its classes and split sizes."""
    lines = [f"{stream.name}: {stream.scenario}, {sizes_line(stream)}"]
    if stream.description:
        lines.append(f"  {stream.description}")
    if stream.shared_classes:
        lines.append(f"  classes shared across tasks on purpose: {', '.join(stream.shared_classes)}")
    for i, task in enumerate(stream.tasks, 1):
        sizes = ", ".join(f"{split} {n}" for split, n in task.sizes().items())
        lines.append(f"  {i}. {task.name} ({task.source}): {task.num_classes} classes; {sizes}")
        names = [stream.class_names[c] for c in task.class_ids]
        more = f", ... (+{len(names) - max_classes})" if len(names) > max_classes else ""
        lines.append(f"     {', '.join(names[:max_classes])}{more}")
    return lines
