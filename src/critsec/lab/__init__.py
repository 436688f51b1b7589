"""The lab: the lesson's experiments, run for real and measured.

Each experiment is a function that runs tasks on a runtime and returns a
frozen result with ``to_json()``; the ``critsec`` command is a thin layer
over these. The task code is written once per style (plain functions for
threads and processes, generator functions for coroutines, ``async def``
for asyncio), side by side, as teaching material.

Presentation (rich tables, progress bars) lives in ``_render`` and
``_progress`` and is not imported here: processes started with ``spawn``
import this package to find their task functions, and should not pay for
importing rich.
"""

from ._counter import (
    INITIAL,
    LESSON_ITERATIONS,
    CounterResult,
    counter_tasks,
    run_counter,
    work_async,
    work_blocking,
    work_generator,
)
from ._demo import (
    DemoCheck,
    DemoSizes,
    DemoStep,
    PendingStep,
    demo_steps,
    forced_interleaving,
    lesson_coroutine,
    run_lesson_threads,
)
from ._faults import (
    HolderDeath,
    HolderKilledCounter,
    PipelineKills,
    counter_with_dying_holder,
    holder_dies,
    pipeline_with_kills,
)
from ._pipeline import (
    ROLES,
    PipelineResult,
    consume_async,
    consume_blocking,
    consume_generator,
    produce_async,
    produce_blocking,
    produce_generator,
    run_pipeline,
)

__all__ = [
    "INITIAL",
    "LESSON_ITERATIONS",
    "ROLES",
    "CounterResult",
    "DemoCheck",
    "DemoSizes",
    "DemoStep",
    "HolderDeath",
    "HolderKilledCounter",
    "PendingStep",
    "PipelineKills",
    "PipelineResult",
    "consume_async",
    "consume_blocking",
    "consume_generator",
    "counter_tasks",
    "counter_with_dying_holder",
    "demo_steps",
    "forced_interleaving",
    "holder_dies",
    "lesson_coroutine",
    "pipeline_with_kills",
    "produce_async",
    "produce_blocking",
    "produce_generator",
    "run_counter",
    "run_lesson_threads",
    "run_pipeline",
    "work_async",
    "work_blocking",
    "work_generator",
]
