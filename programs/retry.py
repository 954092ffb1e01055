"""One retry loop for every program: ask the predictor, retry a bad answer by sampling, then give up with the reason.

Why a helper: DSPy caches LM calls on the request, including `rollout_id`, so asking again with the
same settings returns the very answer that failed. A retry therefore samples at `retry_temperature`
with a fresh `rollout_id` (the attempt number): a new answer, not a cached copy of the failure.

A bad answer is one DSPy cannot parse (`AdapterParseError`, or a decoder failure of `UNDECODABLE` such
as the `RecursionError` of JSON nested deeper than the interpreter's limit), or one the caller's
`validate` rejects, either by raising one of the `catch` exceptions (e.g. pydantic's ValidationError,
a ValueError) or by raising `Rejected(message)`, whose message is recorded as is. Bad answers never raise out of here:
after `attempts` tries the caller gets `None` and the reasons joined with "; ", and decides what to
record (each program logs and returns its own fallback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import dspy
from dspy.utils.exceptions import AdapterParseError

from purpose_dspy.errors import describe_bad_answer

T = TypeVar("T")

# Decoder failures that are not ValueErrors: an answer nested ~1,000 deep (a looping model, or an attacker's
# endpoint) makes json.loads inside the adapter raise RecursionError. Always a bad answer, whatever `catch` says.
UNDECODABLE: tuple[type[BaseException], ...] = (RecursionError,)


class Rejected(Exception):
    """Raised by a `validate` callback for an answer that parsed but is unusable; the message is the reason."""


def attempt_config(attempt: int, retry_temperature: float, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The LM settings for attempt `attempt` (0-based): `config` as given first, then sampled with a new rollout id."""
    base = dict(config or {})
    return base if attempt == 0 else {**base, "temperature": retry_temperature, "rollout_id": attempt}


def predict_with_retries(
    predict: Callable[..., dspy.Prediction],
    *,
    attempts: int,
    retry_temperature: float,
    config: Mapping[str, Any] | None = None,
    validate: Callable[[dspy.Prediction], T] | None = None,
    catch: tuple[type[BaseException], ...] = (AdapterParseError, ValueError),
    describe: Callable[[BaseException], str] = describe_bad_answer,
    **inputs: Any,
) -> tuple[T | dspy.Prediction | None, str | None, int]:
    """Call `predict(**inputs, config=...)` up to `attempts` times; returns (value, error, attempts_used).

    - value: `validate(prediction)` (the prediction itself without `validate`) on success, else None.
    - error: None on success, else every attempt's reason joined with "; ".
    - attempts_used: the attempt that succeeded (1-based), else `attempts`.

    `catch` and `UNDECODABLE` exceptions from the call or from `validate` are described with `describe`; a
    `Rejected` from `validate` is recorded by its message. Anything else propagates (a bug, not a bad answer).
    """
    errors: list[str] = []
    for attempt in range(attempts):
        try:
            pred = predict(**inputs, config=attempt_config(attempt, retry_temperature, config))
            value = validate(pred) if validate is not None else pred
        except Rejected as exc:
            errors.append(str(exc))
            continue
        except catch as exc:
            errors.append(describe(exc))
            continue
        except UNDECODABLE as exc:
            errors.append(describe(ValueError(f"answer nested too deeply to decode ({type(exc).__name__})")))
            continue
        return value, None, attempt + 1
    return None, "; ".join(errors), attempts
