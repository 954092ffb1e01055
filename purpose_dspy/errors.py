"""Typed exceptions, split by who must act.

- `UsageError`: the programmer or CLI user passed something wrong; the message says the fix.
- `LMUnavailableError`: the LM endpoint or local model cannot be reached or loaded; the operator acts.
- `EnvironmentUnavailableError`: an environment's package or Java is missing; the operator installs it.
- `StoreCorruptError`: a store on disk holds records this version cannot trust; the operator points
  the program at a fresh directory (nothing is overwritten to "repair" it).
- `StoreBusyError`: another process holds a store locked too long; the operator stops it or retries.
- `ArtifactError`: a compiled artifact is damaged, edited, or no longer matches the code's signatures;
  the operator recompiles or loads another version.
- `RunStopped` and its subclasses end an episode on purpose; they carry the reason and are caught
  by the orchestrator, never by users.

Model misbehaviour (unparsable output, an invalid action) is *not* an exception here: it is retried,
then recorded on the step. That includes an answer nested too deeply to decode (a `RecursionError`).
An endpoint's misbehaviour is: silence past the request timeout, or a reply that is not a chat
completion (no `choices`), ends the run as `LMUnavailableError`.
"""

from __future__ import annotations


class PurposeDspyError(Exception):
    """Base class for every error this library raises on purpose."""


class UsageError(PurposeDspyError, ValueError):
    """Wrong input from the caller. The message names what was expected, what came, and the fix."""


class LMUnavailableError(PurposeDspyError):
    """The language model cannot be reached or loaded."""


class EnvironmentUnavailableError(PurposeDspyError):
    """An environment cannot be created (package not installed, Java missing...)."""


class StoreCorruptError(PurposeDspyError):
    """A persistent store holds an unreadable, out-of-range or foreign record."""


class StoreBusyError(PurposeDspyError):
    """A persistent store stayed locked by another process longer than the wait allows."""


class RunStopped(PurposeDspyError):
    """Ends an episode; the orchestrator records `reason` as the trajectory's stop reason."""

    reason = "stopped"


class Finished(RunStopped):
    """The environment says the episode is over."""

    reason = "done"


class StepLimitReached(RunStopped):
    """The configured max_steps was reached before the episode ended."""

    reason = "max_steps"


class BudgetExceeded(RunStopped):
    """The LM-call budget for the run is spent."""

    reason = "lm_budget"


def describe_bad_answer(exc: BaseException, limit: int = 160) -> str:
    """One line on why an LM answer was rejected, with the start of the answer when known."""
    reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    answer = getattr(exc, "lm_response", None)
    if answer:
        return f"{reason[:limit]} (answer: {' '.join(str(answer).split())[:limit]})"
    return reason[:limit]


class ArtifactError(PurposeDspyError):
    """A compiled artifact is missing, damaged, edited, or was compiled against other signatures.

    Nothing is loaded from it. The message names the file or field that differs and what to do
    (usually: recompile with `purpose-dspy compile`, or load another version).
    """


class StaleArtifactError(ArtifactError):
    """A sound artifact compiled against signatures that the running code no longer has.

    Its files are intact, but its demos and instructions were written for other fields. A compile into
    the same directory starts from the zero-shot program instead of it (see `compile_job`).
    """


class LimitStop(RunStopped):
    """A monitor's limit (its `limits.toml`) or its pause flag stopped the run before the next step.

    `limit` names which (`lm_calls_per_run`, `tokens_per_day`, `deny_actions`, `flag_streak`,
    `self_modifications`, `paused`...); `reason` is `limit:<limit>` (the trajectory's stop reason) and the
    message one line: the figures, and who must do what (raise the limit, wait, `purpose-dspy resume`).
    """

    reason = "limit"

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.reason = f"limit:{limit}"
