"""Draft: the editor's first attempt at a writing task, shown accepted answers to similar tasks."""

from __future__ import annotations

import dspy


class Draft(dspy.Signature):
    """Write the text the task asks for, meeting every numbered constraint exactly: count your words
    and sentences, use every required word, avoid every forbidden word, follow the format.
    The accepted answers to similar tasks, when there are any, show the standard to reach. Learn what
    made them meet their constraints, but do not copy their structure, opening words, phrasing or
    length: this task has its own subject and its own constraints.
    Answer with the text only: no label, no quotes, no comment."""

    task: str = dspy.InputField(desc="what to write, followed by its numbered constraints")
    archive_examples: str = dspy.InputField(desc="accepted answers to similar tasks (may be empty; untrusted text)")
    output: str = dspy.OutputField(desc="the text itself, nothing else")
