"""Constrained-writing tasks: a seed picks a form, a subject and constraints that can all be met together.

A task is a function of its seed alone (`random.Random(f"constrained-writing:{seed}")`, never `hash()`,
which changes between processes), so seed N is the same task on every machine and a task set grows by
adding seeds without changing the old ones. The split is only a label: disjoint seed ranges give
disjoint tasks. There is always a word count, plus up to `max_constraints - 1` (default 2) others,
chosen so that a text meeting all of them exists: a sentence count leaves at least five words a
sentence; bullets and titles never come with a sentence count (a bullet or title line is a sentence of
its own); a forbidden word is never a required word or the required first word.
Every constraint is checked in Python (`constraints.py`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from purpose_dspy.errors import UsageError
from purpose_dspy.tasksets import TaskSet
from purpose_dspy.types import Task
from purpose_dspy.writing.constraints import (
    Constraint,
    ForbiddenWords,
    Format,
    RequiredWords,
    SentenceCount,
    WordCount,
    parse_constraints,
    sort_key,
)

WRITING_ENV = "writing:constrained"
WRITING_ENVS = (WRITING_ENV,)
_DEFAULTS: dict[str, Any] = {"max_constraints": 3}
_KNOWN_PARAMS = ("max_constraints", "forms")


def is_writing_env(env_id: str) -> bool:
    """Whether `env_id` names a writing task family (its tasks come from here, not from an Environment)."""
    return env_id in WRITING_ENVS


class WritingTask(BaseModel):
    """One writing request and the constraints its output is checked against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str = Field(description="Like Task.task_id: 'writing:constrained/train/7' (non-default params appended).")
    seed: int = Field(0, description="The seed the task was generated from (0 for a user's own request).")
    split: str = Field("train", description="The split label; it does not change the task.")
    form: str = Field(description="What to write: 'tagline', 'museum placard'...; 'free' for a user's request.")
    subject: str = Field("", description="What it is about, e.g. 'a bookstore in a harbor town'.")
    brief: str = Field(min_length=1, description="The request in one sentence, as the writer sees it.")
    constraints: tuple[Constraint, ...] = Field((), description="Checked in Python; empty only for form 'free'.")

    @model_validator(mode="after")
    def _constrained(self) -> WritingTask:
        if not self.constraints and self.form != "free":
            raise ValueError("a generated writing task needs at least one constraint")
        return self

    def text(self) -> str:
        """The brief and the numbered constraints, as shown to a writer."""
        if not self.constraints:
            return self.brief
        lines = [f"{n}. {c.describe()}" for n, c in enumerate(self.constraints, 1)]
        return self.brief + "\nConstraints:\n" + "\n".join(lines)

    def check(self, output: str) -> list[bool]:
        """One verdict per constraint, in order."""
        return [c.check(output) for c in self.constraints]

    def passes(self, output: str) -> bool:
        """Whether `output` meets every constraint."""
        return all(self.check(output))

    def failures(self, output: str) -> list[str]:
        """One sentence per unmet constraint, in order (empty when it passes)."""
        return [msg for msg in (c.failure(output) for c in self.constraints) if msg]


@dataclass(frozen=True)
class _Form:
    """A kind of text: how to ask for it, what it may be about, its natural length and layouts."""

    name: str
    template: str
    pools: tuple[str, ...]
    words: tuple[int, int]
    exact_ok: bool = False
    formats: tuple[str, ...] = ("starts_with",)
    starts: tuple[str, ...] = ("imagine", "picture", "here")


_FORMS = (
    _Form("tagline", "Write a tagline for {}.", ("place", "product", "event"), (6, 15), True,
          ("question", "lowercase", "starts_with"), ("imagine", "where", "every")),
    _Form("slogan", "Write a slogan for {}.", ("place", "product", "event"), (4, 10), True,
          ("question", "lowercase", "starts_with"), ("come", "every", "always")),
    _Form("email subject line", "Write an email subject line for a newsletter about {}.", ("place", "event"), (5, 12),
          True, ("question", "lowercase", "starts_with"), ("inside", "news", "this")),
    _Form("welcome sign", "Write a welcome sign for {}.", ("place",), (8, 20), True,
          ("lowercase", "starts_with"), ("welcome", "hello", "come")),
    _Form("haiku-like poem", "Write a haiku-like poem about {}.", ("place", "product", "dish"), (10, 17), True,
          ("lowercase", "starts_with"), ("morning", "quiet", "under")),
    _Form("tweet", "Write a tweet about {}.", ("place", "product", "event", "dish"), (15, 45), False,
          ("question", "lowercase", "starts_with"), ("today", "guess", "tonight")),
    _Form("limerick-free short poem", "Write a short poem (not a limerick) about {}.", ("place", "product", "event"),
          (25, 60), False, ("lowercase", "title", "starts_with"), ("when", "under", "somewhere")),
    _Form("product description", "Write a product description for {}.", ("product",), (40, 90), False,
          ("bullets", "title", "starts_with"), ("built", "meet", "made")),
    _Form("museum placard", "Write a museum placard about {}.", ("product", "place"), (40, 80), False,
          ("title", "starts_with"), ("this", "once", "visitors")),
    _Form("recipe intro", "Write a recipe intro for {}.", ("dish",), (40, 90), False,
          ("question", "title", "starts_with"), ("some", "this", "when")),
    _Form("job ad opening", "Write the opening of a job ad for {}.", ("place",), (30, 70), False,
          ("bullets", "question", "starts_with"), ("join", "wanted", "looking")),
    _Form("weather report", "Write a weather report for the area around {}.", ("place",), (25, 60), False,
          ("bullets", "starts_with"), ("today", "expect", "tomorrow")),
    _Form("apology note", "Write an apology note from {} to its customers.", ("place",), (30, 70), False,
          ("title", "starts_with"), ("sorry", "yesterday", "dear")),
    _Form("toast", "Write a toast for {}.", ("event",), (30, 70), False, ("starts_with",), ("friends", "tonight", "raise")),
    _Form("book blurb", "Write a book blurb for a novel about {}.", ("book",), (40, 90), False,
          ("question", "title", "starts_with"), ("nobody", "when", "one")),
    _Form("summary", "Write a summary of {}.", ("event",), (30, 70), False, ("bullets", "title", "starts_with"),
          ("on", "last", "this")),
    _Form("event invitation", "Write an invitation to {}.", ("event",), (25, 60), False,
          ("question", "starts_with"), ("join", "come", "you")),
)
FORMS: tuple[str, ...] = tuple(form.name for form in _FORMS)

# Each subject carries words a writer would use anyway, so a required word reads naturally.
_SUBJECTS: dict[str, tuple[tuple[str, str], ...]] = {
    "place": (
        ("a bookstore in a harbor town", "harbor pages tide shelves"),
        ("a coffee shop that roasts its own beans", "roast beans morning cup"),
        ("a bakery that opens before dawn", "dawn bread oven crust"),
        ("a bicycle repair shop", "wheels chain ride spokes"),
        ("a mountain hut for hikers", "summit trail stove boots"),
        ("a public library in a small city", "shelves quiet cards stories"),
        ("a family-run hardware store", "nails tools advice aisles"),
        ("a night market by the river", "lanterns river stalls night"),
        ("a rooftop community garden", "soil tomatoes rooftop seeds"),
        ("a violin maker's workshop", "spruce varnish strings bow"),
        ("a seaside ice cream stand", "waffle salt cones summer"),
        ("a tailor who repairs old coats", "thread needle wool seams"),
        ("a ferry that crosses a cold bay", "deck bay gulls crossing"),
        ("a planetarium in a desert town", "stars dome desert orbit"),
        ("a repair café run by volunteers", "fix volunteers toasters kettle"),
        ("a dog-grooming van", "paws suds van brush"),
        ("a ceramics studio with a wood kiln", "clay kiln glaze ash"),
        ("a vinyl record shop", "vinyl crates needle groove"),
        ("a lighthouse turned guesthouse", "lamp keeper storm beacon"),
        ("a night-shift diner on a highway", "pie headlights booth coffee"),
        ("a climbing gym in an old warehouse", "chalk holds rope warehouse"),
        ("a tea house in a botanical garden", "leaves steam garden pot"),
        ("a used-camera shop", "lens film shutter light"),
        ("a community radio station", "signal voices static airwaves"),
        ("a small-town cinema with one screen", "screen popcorn reel seats"),
        ("a bike-share scheme for a hilly city", "hills docks pedals city"),
    ),
    "product": (
        ("a hand-bound leather journal", "leather stitched pages ink"),
        ("a cast-iron skillet", "iron sear heat heirloom"),
        ("a solar-powered camping lantern", "solar glow charge tent"),
        ("a pair of waterproof hiking boots", "waterproof laces grip mud"),
        ("a wool blanket woven on an old loom", "wool loom warmth weave"),
        ("a mechanical wristwatch", "gears tick dial wrist"),
        ("a folding wooden chair", "oak hinge folds porch"),
        ("a fountain pen with a steel nib", "nib ink steel script"),
        ("a ceramic teapot", "glaze spout steep lid"),
        ("a kite for beach days", "wind tail string sky"),
        ("a handmade chess set", "pieces board walnut knight"),
        ("a rain jacket for cyclists", "rain hood reflective zip"),
        ("a sourdough starter kit", "starter flour jar rise"),
        ("a pocket field notebook", "pocket pencil notes field"),
    ),
    "dish": (
        ("a lemon and thyme roast chicken", "lemon thyme crisp oven"),
        ("a weeknight tomato soup", "tomato basil simmer bowl"),
        ("a blueberry cobbler", "blueberries butter bubbling crumble"),
        ("a spicy black bean chili", "beans cumin smoky pot"),
        ("buttermilk pancakes", "buttermilk griddle syrup fluffy"),
        ("a summer peach salad", "peaches mint ripe dressing"),
        ("a slow-cooked beef stew", "stew carrots tender broth"),
        ("a mushroom risotto", "mushrooms rice stir parmesan"),
        ("homemade flatbread", "dough skillet charred flour"),
        ("a chocolate olive-oil cake", "chocolate olive crumb glaze"),
    ),
    "event": (
        ("a harvest festival in a mountain village", "harvest apples village music"),
        ("the opening night of a community theater", "curtain stage applause opening"),
        ("a retirement party for a ferry captain", "captain voyage harbor years"),
        ("a neighborhood street cleanup", "brooms neighbors street morning"),
        ("a friend's wedding by a lake", "lake vows shore toast"),
        ("a charity bake sale at a school", "cookies school charity tables"),
        ("a midnight astronomy meetup", "telescopes midnight meteors sky"),
        ("a library's hundredth birthday", "century books readers candles"),
        ("a marathon through an old city", "runners finish miles streets"),
        ("a winter swim in the sea", "cold waves courage towels"),
    ),
    "book": (
        ("a lighthouse keeper who finds a stranger's map", "keeper map secret storm"),
        ("two sisters who inherit a failing orchard", "orchard sisters harvest debt"),
        ("a chef who loses her sense of taste", "chef taste kitchen memory"),
        ("a detective in a city where it never stops raining", "rain detective clues city"),
        ("a boy who builds a radio to talk to his grandfather", "radio signal grandfather static"),
        ("a crew stranded on a research station in Antarctica", "ice station crew winter"),
        ("a forger who paints one last masterpiece", "forger canvas paint truth"),
        ("a village that wakes up one day in the wrong century", "village century clocks strange"),
        ("a train conductor who keeps a secret diary", "train diary tracks passengers"),
        ("a beekeeper who hears the hive speak", "bees hive honey voice"),
    ),
}

# Words a writer reaches for without thinking; forbidding them makes the writer choose.
_CLICHES = ("we", "our", "us", "best", "amazing", "discover", "very", "unique", "journey", "perfect", "ultimate",
            "experience", "really", "just", "incredible", "passion", "love", "delicious", "world-class", "cozy",
            "nestled", "vibrant")
_EXTRA_KINDS = {"sentence_count": 3.0, "required_words": 4.0, "forbidden_words": 4.0, "format": 1.5}


def writing_task(seed: int, split: str = "train", params: dict[str, Any] | None = None) -> WritingTask:
    """The task of `seed`: the same seed (and params) always gives the same task."""
    max_constraints, forms = _read_params(params or {})
    try:
        given = {k: v for k, v in (params or {}).items() if v != _DEFAULTS.get(k)}  # same tasks, same id
        task_id = Task(env_id=WRITING_ENV, seed=seed, split=split, params=given).task_id
    except ValidationError as exc:
        raise UsageError(f"writing task: split must be 'train', 'dev' or 'test' and seed an int; "
                         f"got split={split!r}, seed={seed!r}") from exc
    rng = random.Random(f"constrained-writing:{seed}")
    form = rng.choice(forms)
    subject, subject_words = rng.choice([s for pool in form.pools for s in _SUBJECTS[pool]])
    kinds = _pick_kinds(rng, min(max_constraints - 1, len(_EXTRA_KINDS)))
    constraints = _constraints(rng, form, subject, subject_words.split(), kinds)
    return WritingTask(task_id=task_id, seed=seed, split=split, form=form.name, subject=subject,
                       brief=form.template.format(subject), constraints=tuple(sorted(constraints, key=sort_key)))


def _read_params(params: dict[str, Any]) -> tuple[int, list[_Form]]:
    unknown = sorted(set(params) - set(_KNOWN_PARAMS))
    if unknown:
        raise UsageError(f"unknown writing-task param(s) {unknown}; known: {', '.join(_KNOWN_PARAMS)}")
    max_constraints = params.get("max_constraints", _DEFAULTS["max_constraints"])
    if isinstance(max_constraints, bool) or not isinstance(max_constraints, int) or max_constraints < 1:
        raise UsageError(f"max_constraints must be an integer >= 1, got {max_constraints!r}")
    names = params.get("forms", FORMS)
    if isinstance(names, str) or not names or not all(isinstance(n, str) for n in names):
        raise UsageError(f"forms must be a non-empty list of form names, got {names!r}; e.g. forms = ['tagline']")
    bad = [n for n in names if n not in FORMS]
    if bad:
        raise UsageError(f"unknown form(s) {bad}; known forms: {', '.join(FORMS)}")
    return max_constraints, [f for f in _FORMS if f.name in names]


def _pick_kinds(rng: random.Random, n_max: int) -> list[str]:
    """0..n_max distinct constraint kinds beyond the word count, weighted towards words over formats."""
    n = rng.randint(0, n_max)
    pool = dict(_EXTRA_KINDS)
    picked = []
    for _ in range(n):
        kind = rng.choices(list(pool), weights=list(pool.values()))[0]
        picked.append(kind)
        del pool[kind]
    return picked


def _constraints(rng: random.Random, form: _Form, subject: str, subject_words: list[str],
                 kinds: list[str]) -> list[Constraint]:
    words = _word_count(rng, form)
    out: list[Constraint] = [words]
    sentences = _sentence_count(rng, words) if "sentence_count" in kinds else None
    if sentences:
        out.append(sentences)
    required: list[str] = []
    if "required_words" in kinds:
        required = rng.sample(subject_words, rng.randint(1, 2))
        out.append(RequiredWords(words=required))
    fmt = _format(rng, form, words, has_sentences=sentences is not None) if "format" in kinds else None
    if fmt:
        out.append(fmt)
    if "forbidden_words" in kinds:
        taken = set(required) | set(subject_words) | set(subject.lower().split()) | {fmt.word if fmt else None}
        allowed = [w for w in _CLICHES if w not in taken]
        out.append(ForbiddenWords(words=rng.sample(allowed, rng.randint(1, 3))))
    return out


def _word_count(rng: random.Random, form: _Form) -> WordCount:
    """Exact for short forms 40% of the time, else a range inside the form's natural length."""
    lo, hi = form.words
    if form.exact_ok and rng.random() < 0.4:
        n = rng.randint(lo, hi)
        return WordCount(min=n, max=n)
    third = (hi - lo) // 3
    a = rng.randint(lo, lo + third)
    b = rng.randint(max(a + 3, hi - third), hi)
    if lo >= 25:  # round numbers read like a real brief: 30-80, not 31-77
        a, b = 5 * (a // 5), 5 * math.ceil(b / 5)
    return WordCount(min=a, max=b)


def _sentence_count(rng: random.Random, words: WordCount) -> SentenceCount | None:
    """Natural sentences: about 5 to 30 words each (so never more than one per three words of the minimum)."""
    low = max(1, math.ceil((words.max or words.min) / 30))
    high = min(5, words.min // 5)
    if low > high:
        return None
    n = rng.randint(low, high)
    if n < high and rng.random() < 0.3:
        return SentenceCount(min=n, max=n + 1)
    return SentenceCount(min=n, max=n)


def _format(rng: random.Random, form: _Form, words: WordCount, has_sentences: bool) -> Format | None:
    """A layout that fits the form; bullets and titles only without a sentence count."""
    styles = [s for s in form.formats if not (has_sentences and s in ("bullets", "title"))]
    max_items = min(5, words.min // 6)
    if max_items < 3:
        styles = [s for s in styles if s != "bullets"]
    if not styles:
        return None
    style = rng.choice(styles)
    if style == "bullets":
        return Format(style="bullets", items=rng.randint(3, max_items))
    if style == "starts_with":
        return Format(style="starts_with", word=rng.choice(form.starts))
    return Format(style=style)


def task_from_text(text: str, task_id: str = "cli") -> WritingTask:
    """A user's own request: the text is the brief, and its constraints are those `parse_constraints` finds."""
    if not text.strip():
        raise UsageError("the writing request is empty; pass the text to write, e.g. 'Write a tagline in 12 words'")
    return WritingTask(task_id=task_id, form="free", brief=text.strip(), constraints=tuple(parse_constraints(text)))


def tasks_of(taskset: TaskSet, split: str) -> list[WritingTask]:
    """The writing tasks of one split of a writing task set, in seed order."""
    if not is_writing_env(taskset.env):
        raise UsageError(f"task set {taskset.name} has env {taskset.env!r}; writing tasks need env = "
                         f"{' or '.join(map(repr, WRITING_ENVS))}")
    return [writing_task(t.seed, t.split, t.params) for t in taskset.tasks(split)]
