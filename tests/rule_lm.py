"""A rule-following stand-in LM for control-flow tests of compile, save and load (not evidence of learning).

It is an lm15 engine behind a real `dspy.LM`, so DSPy's adapter, cache and usage paths all run. It
reads the fields of the prompt and answers each role by a rule: the actor walks greedily toward the
treasure of a treasure-maze observation (first open direction when greedy is blocked), the critic
scores 10 minus the distance to the treasure and quotes the state, the meta-judge keeps everything,
the flaw writer invents evidence, the distiller proposes nothing; the editor's draft exceeds its word limit
by one, its refinement meets every constraint (`witness`) and its critique reports Python's measurements. `calls` counts answers by role;
`interrupt_after` raises KeyboardInterrupt at that call (an interrupted compile).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from purpose_dspy.writing.tasks import WritingTask

import dspy

_FIELD = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with |\Z)", re.S)
_POS = re.compile(r"row (\d+), column (\d+)\. The treasure is at row (\d+), column (\d+)")
_OPEN = re.compile(r"Open directions: ([a-z, ]+)\.")
STEP = {"north": (-1, 0), "south": (1, 0), "west": (0, -1), "east": (0, 1)}


def _distance(text: str) -> int | None:
    m = _POS.search(text)
    return None if not m else abs(int(m[1]) - int(m[3])) + abs(int(m[2]) - int(m[4]))


class RuleEngine:
    supports_response_schema = True

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.interrupt_after = interrupt_after
        self.writing_tasks: dict[str, Any] = {}  # task text -> WritingTask, for the editor roles
        self._lock = threading.Lock()

    def __deepcopy__(self, memo):  # teleprompters deep-copy modules; share the engine
        return self

    def complete(self, request):
        from dspy.lm15 import response_from_openai_chat

        text = "\n".join(m.text or "" for m in request.messages)
        # The fields of this call are in the last message (earlier ones may be demos).
        fields = dict(_FIELD.findall((request.messages[-1].text or "").split("[[ ## completed ## ]]")[-1]))
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system or [])
        role, answer = self._answer(system, fields)
        with self._lock:
            self.calls[role] += 1
            if self.interrupt_after is not None and sum(self.calls.values()) >= self.interrupt_after:
                raise KeyboardInterrupt("interrupted by the test")
        body = {"id": "r", "object": "chat.completion", "created": 0, "model": request.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(answer)}}],
                "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": 20, "total_tokens": len(text) // 4 + 20}}
        return response_from_openai_chat(body, model=request.model)

    def _answer(self, system: str, f: dict[str, str]):
        if "honest_judgment" in system:
            return "evaluator", {"evidence": "a golden door swings open", "reasoning": "the action promised it"}
        if "judgment" in system and "grade" in system:
            g = {k: 4 for k in ("evidence_grounding", "reasoning_coherence", "calibration", "anti_sycophancy", "consistency")}
            return "judge", {"grade": {**g, "verdict": "keep", "explanation": "fine"}}
        if "constraints_met" in system or "previous_output" in system or "archive_examples" in system:
            return self._edit(system, f)
        if "strategic_tips" in system:
            return "distiller", {"strategic_tips": [], "procedures": [], "tool_tips": [], "sources": []}
        if "state_before" in system:
            before, after = f.get("state_before", ""), f.get("state_after", "")
            db, da = _distance(before), _distance(after)
            quote = (after.split(". ")[0] if after else "")[:60] or "You are at"
            return "critic", {"evidence": quote, "reasoning": "distance to the treasure",
                              "phi_before": max(0, 10 - (db if db is not None else 10)),
                              "phi_after": max(0, 10 - (da if da is not None else 10)), "confidence": 0.9}
        obs = f.get("observation", "")
        m, opened = _POS.search(obs), _OPEN.search(obs)
        moves = [d.strip() for d in opened[1].split(",")] if opened else ["north"]
        choice = moves[0]
        if m:
            r, c, tr, tc = map(int, m.groups())
            for d in moves:
                dr, dc = STEP.get(d, (0, 0))
                if abs(r + dr - tr) + abs(c + dc - tc) < abs(r - tr) + abs(c - tc):
                    choice = d
                    break
        return "actor", {"thought": "closer", "action": choice}


    def _edit(self, system: str, f: dict[str, str]):
        """Editor roles: drafts one word long on exact counts (so there is something to refine), refines to a
        witness that meets every constraint, critiques honestly (Python's own measurements)."""
        from purpose_dspy.writing.constraints import count_sentences, count_words

        task = self.writing_tasks[f["task"].strip()]
        if "constraints_met" in system:
            out = f.get("output", "").strip()
            met = task.check(out)
            return "critique", {"word_count": count_words(out), "sentence_count": count_sentences(out),
                                "constraints_met": met, "is_on_brief": True, "has_concrete_detail": True,
                                "avoids_cliches": True, "overall_score": 9, "critique": " ".join(task.failures(out)) or "Good."}
        text = witness(task)
        limit = next((c.max for c in task.constraints if c.kind == "word_count" and c.max), None)
        if "previous_output" not in system and limit and "\n" not in text:  # a draft one word too long
            text = text[:-1] + " " + " ".join(["more"] * (limit + 1 - count_words(text))) + text[-1]
        return ("refine" if "previous_output" in system else "draft"), {"output": text}


def rule_lms(engine: RuleEngine | None = None, cache: bool = False) -> tuple[dict, RuleEngine]:
    engine = engine or RuleEngine()
    lm = dspy.LM("local/rule-lm", engine=engine, temperature=0.0, max_tokens=256, cache=cache, num_retries=0)
    return {"actor": lm, "critic": lm, "judge": lm, "optimizer": lm, "editor": lm}, engine


def witness(task: WritingTask) -> str:
    """A text meeting every constraint: required words and filler, cut into the asked sentences or bullets."""
    by_kind = {c.kind: c for c in task.constraints}
    fmt = by_kind.get("format")
    style = fmt.style if fmt else None
    words = [fmt.word] if style == "starts_with" else []
    words += [w for phrase in getattr(by_kind.get("required_words"), "words", ()) for w in phrase.split()]
    sentences = by_kind.get("sentence_count")
    groups = fmt.items if style == "bullets" else (sentences.min if sentences else 1)
    title = style == "title"
    count = by_kind["word_count"]
    filler = max(0, max(count.min, groups + title) - len(words))
    words += [f"stone{task.seed}x{i}" for i in range(filler)]  # distinct per task: no two witnesses look copied
    head, body = (words[:1], words[1:]) if title else ([], words)
    cuts = [len(body) * i // groups for i in range(groups + 1)]
    parts = [" ".join(body[a:b]) for a, b in zip(cuts, cuts[1:])]
    if style == "bullets":
        return "\n".join(f"- {part}" for part in parts)
    text = " ".join(f"{part}." for part in parts)
    if style == "question":
        text = text[:-1] + "?"
    return f"{head[0]}\n\n{text}" if title else text
