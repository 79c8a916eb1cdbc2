"""``stale-gradients``: gradients that accumulate across optimizer steps because nothing zeroes them.

``backward()`` adds into ``.grad``. The monitor records a parameter as stale when backward
reaches it with a non-zero ``.grad`` left from before the last optimizer step. Deliberate
accumulation (several backward passes per optimizer step, zeroed after the step) never reaches a
parameter with an old gradient, so it is not flagged. No threshold: one stale parameter means
``zero_grad`` is missing, and the effective step then grows with every step taken.
"""

from __future__ import annotations

from lossdoctor.checks.base import check
from lossdoctor.findings import Finding, Fix
from lossdoctor.thresholds import Thresholds
from lossdoctor.trace import Trace


@check("stale-gradients", scope="run")
def stale_gradients(trace: Trace, th: Thresholds) -> list[Finding]:
    """Parameters whose gradient from a previous step was still there at the next backward."""
    if trace.run is None or not trace.run.stale_params:
        return []
    names = sorted(set(trace.run.stale_params))
    step = trace.run.step
    return [Finding(
        "stale-gradients", "error", "optimizer",
        {"step": step, "params": names[:10], "count": len(names)},
        f"step {step}: {len(names)} parameter(s) still held the previous step's gradient when "
        "backward ran again: gradients are never zeroed.",
        "backward() adds into .grad. Without optimizer.zero_grad() between steps every step "
        "applies the sum of all past gradients, so the effective step keeps growing. Deliberate "
        "accumulation (several backward passes per optimizer step, zeroed after the step) is "
        "not flagged.",
        (Fix("zero the gradients every step",
             "optimizer.zero_grad(set_to_none=True)\nloss.backward()\noptimizer.step()"),),
    )]
