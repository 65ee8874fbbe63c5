"""A stepped ramp for any of the locustfiles: ``-f loadtests/locustfile.py,loadtests/shapes.py``.

``--step-users 10 --step-seconds 30 --steps 5``: 10 users more every 30 s until 50, held
for one more step, then the run stops by itself (bounded: steps + 1 periods).
"""

from __future__ import annotations

from typing import Any, cast

from backend_stats import on
from locust import LoadTestShape, events


@on(events.init_command_line_parser)
def _(parser: Any) -> None:
    group = parser.add_argument_group("stepped ramp")
    group.add_argument("--step-users", type=int, default=10, help="users added each step")
    group.add_argument("--step-seconds", type=float, default=30, help="length of a step")
    group.add_argument("--steps", type=int, default=5, help="steps up before holding")


class StepRamp(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        users = getattr(options, "step_users", 10)
        seconds = getattr(options, "step_seconds", 30.0)
        steps = getattr(options, "steps", 5)
        run_time: float = cast(Any, self).get_run_time()  # locust leaves it unannotated
        step = int(run_time // seconds)
        if step > steps:
            return None  # held for one step at the top: done
        return users * min(step + 1, steps), float(users)
