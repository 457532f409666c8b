"""The learning-rate plan: how many steps a run takes, and the warmup-then-cosine multiplier at each."""

from __future__ import annotations

import logging
import math

from selfsup.config import PretrainingParams

logger = logging.getLogger(__name__)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: linear warmup to 1, then cosine decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class StepPlan:
    """How many steps the run takes, and the learning-rate multiplier at each.

    With a time budget the total is unknown at the start: after
    ``CALIBRATION_STEPS`` steps it is set from the measured seconds per step so
    that the cosine schedule ends when the budget does. ``epochs`` stays the cap.
    A resumed run keeps the plan recorded in its checkpoint.
    """

    CALIBRATION_STEPS = 10

    def __init__(self, steps_per_epoch: int, params: PretrainingParams):
        self.max_steps = steps_per_epoch * params.epochs
        self.total_steps = self.max_steps
        self.warmup_steps = min(self.max_steps, max(1, round(params.warmup_epochs * steps_per_epoch)))
        self.budget_s = params.time_budget_s
        self._calibrated_at: tuple[int, float] | None = None  # (steps, seconds) at the first plan

    def lr_factor(self, step: int) -> float:
        return warmup_cosine(step, self.warmup_steps, self.total_steps)

    def state(self) -> dict:
        """What a checkpoint records of the plan."""
        return {"total_steps": self.total_steps, "warmup_steps": self.warmup_steps}

    def restore(self, state: dict) -> None:
        self.total_steps = state["total_steps"]
        self.warmup_steps = state["warmup_steps"]

    def after_step(self, steps_done: int, elapsed_s: float) -> str | None:
        """Why to stop after ``steps_done`` steps, or None to go on."""
        if self.budget_s is not None:
            if elapsed_s >= self.budget_s:
                return "time_budget"
            if self._replans_at(steps_done):
                self._replan(steps_done, elapsed_s)
        if steps_done >= self.total_steps:
            return "time_budget" if self.total_steps < self.max_steps else "epochs"
        return None

    def _replans_at(self, steps_done: int) -> bool:
        """At 10, 20, 40, 80, … steps: the first steps are slow (allocation, caches), so the
        first plan is refined with the pace measured since, while the schedule is still early."""
        multiple, remainder = divmod(steps_done, self.CALIBRATION_STEPS)
        return remainder == 0 and multiple > 0 and multiple & (multiple - 1) == 0

    def _replan(self, steps_done: int, elapsed_s: float) -> None:
        if self._calibrated_at is None:
            self._calibrated_at = (steps_done, elapsed_s)
            seconds_per_step = elapsed_s / steps_done
        else:
            since_steps, since_s = self._calibrated_at
            seconds_per_step = (elapsed_s - since_s) / (steps_done - since_steps)
        affordable = steps_done + round((self.budget_s - elapsed_s) / seconds_per_step)
        self.total_steps = max(steps_done + 1, min(self.max_steps, affordable))
        if steps_done == self.CALIBRATION_STEPS:
            self.warmup_steps = min(self.warmup_steps, max(1, self.total_steps // 10))
        logger.info(
            "Time budget %.0f s: planned %d steps (%.3f s/step measured)",
            self.budget_s,
            self.total_steps,
            seconds_per_step,
        )
