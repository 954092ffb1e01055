"""`purpose_dspy.testing`: strategies that shrink to readable examples, the property functions on scripted
critics, the suite and plugin through the example file (passing on the embedded model, failing with a
shrunk counterexample with a safeguard off and for an inconsistent critic), and the plugin found in a
fresh virtualenv after installing the wheel."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import find, given
from hypothesis import strategies as st
from pantry import Pantry

from purpose_dspy.safeguards.canonical import canonical_text
from purpose_dspy.safeguards.injection import find_injection
from purpose_dspy.testing import PROPERTIES, CriticPropertySuite, GuardedCritic, PropertyFailed, RawCritic
from purpose_dspy.testing import properties as P
from purpose_dspy.testing.plugin import build_critic_lm
from purpose_dspy.testing.scripted import flatterer, moody, scripted_critic_lm
from purpose_dspy.testing.strategies import INSTRUCTIONS, injected, injected_steps, rewrites, states, transitions, walks
from purpose_dspy.testing.walks import WalkSource
from purpose_dspy.types import State

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "test_my_critic.py"
MAZE = WalkSource("treasure-maze")


# -- strategies ------------------------------------------------------------------------------------

def test_transitions_are_real_steps_and_shrink_to_the_first_move_of_seed_0():
    step = find(transitions(MAZE), lambda s: True)
    assert step.origin == "treasure-maze/dev/0 ['north']"
    again = MAZE.walk(0, [0])
    assert (step.before, step.after) == (again.states[0], again.states[1])
    assert repr(step).startswith("Step(treasure-maze/dev/0 ['north']: 'You enter the maze.")


@given(walk=walks(MAZE, max_steps=5))
def test_walks_replay_from_their_seed_and_choices(walk):
    assert len(walk.actions) <= 5 and len(walk.states) == len(walk.actions) + 1
    assert all(a in s.valid_actions for a, s in zip(walk.actions, walk.states))
    replay = MAZE.walk(walk.task.seed, [walk.states[i].valid_actions.index(a) for i, a in enumerate(walk.actions)])
    assert replay.states == walk.states


@pytest.mark.parametrize("mode", ["text", "json"])
@given(data=st.data())
def test_rewrites_keep_the_canonical_text(mode, data):
    source = WalkSource(Pantry, params={"json": mode == "json"})
    state = data.draw(states(source), label="state")
    rewritten = data.draw(rewrites(state, source.volatile), label="rewritten")
    assert canonical_text(rewritten.observation, source.volatile) == canonical_text(state.observation, source.volatile)
    if mode == "json":
        json.loads(rewritten.observation)


def test_a_rewrite_shrinks_to_one_changed_separator():
    state = MAZE.walk(0, []).last
    smallest = find(rewrites(state), lambda s: s.observation != state.observation).observation
    text = state.observation
    one_newline = {text[:i] + "\n" + text[i + 1:] for i, c in enumerate(text) if c == " "}
    assert smallest in {"\n" + text, text + "\n", *one_newline}


def test_rewrites_change_volatile_fields_and_json_key_order():
    text = State(observation="You are in the kitchen. [turn 3] The fridge is closed.")
    other = find(rewrites(text, (r"\[turn \d+\]",)), lambda s: "[turn 3]" not in s.observation)
    assert re.search(r"\[turn \d+\]", other.observation)
    record = State(observation=json.dumps({"room": "kitchen", "fridge": "closed", "turn": 3}))
    reordered = find(rewrites(record, ("turn",)), lambda s: next(iter(json.loads(s.observation))) != "room")
    assert json.loads(reordered.observation)["room"] == "kitchen"


@given(state=states(MAZE), data=st.data())
def test_every_injection_is_one_the_guard_catches(state, data):
    poisoned = data.draw(injected(state))
    assert find_injection(poisoned.observation) and not find_injection(state.observation)


def test_an_injection_shrinks_to_the_first_instruction_appended():
    state = MAZE.walk(0, []).last
    assert find(injected(state), lambda s: True).observation == f"{state.observation} {INSTRUCTIONS[0]}"
    record = State(observation=json.dumps({"room": "kitchen", "note": "a shopping list"}))
    assert INSTRUCTIONS[0] in json.loads(find(injected(record), lambda s: True).observation)["note"]


# -- the properties on scripted critics ------------------------------------------------------------

def examples() -> dict:
    step = MAZE.walk(3, [1, 0]).steps[-1]
    spaced = step.replace(after=State(observation=step.after.observation.replace(" ", "\n")), origin=" spaced")
    return {"step": (step,), "rewrite": (step, spaced), "injected": (find(injected_steps(step), lambda s: True),),
            "walk": (MAZE.walk(3, [0, 1, 0, 1]),)}


def test_every_property_holds_for_a_flatterer_behind_the_safeguards():
    critic, args = GuardedCritic(lm=scripted_critic_lm(flatterer)), examples()
    verdicts = [p.check(critic, *args[p.draws]) for p in PROPERTIES.values()]
    assert all(v.holds for v in verdicts), [str(v) for v in verdicts if not v.holds]


def test_an_inconsistent_critic_alone_fails_with_what_it_said():
    verdict = P.identical_states_identical_phi(RawCritic(lm=scripted_critic_lm(moody)), examples()["step"][0])
    assert not verdict.holds
    assert "1st answer: Φ 1 -> 2" in str(verdict) and "2nd answer: Φ 2 -> 3" in str(verdict)
    with pytest.raises(PropertyFailed, match="the same step must get the same Φ both times"):
        verdict.check()
    assert isinstance(PropertyFailed("x"), AssertionError)  # pytest and hypothesis treat it as a failure


def test_the_suite_has_one_test_per_property():
    tests = {name.removeprefix("test_") for name in dir(CriticPropertySuite) if name.startswith("test_")}
    assert tests == set(PROPERTIES)


def test_importing_the_properties_needs_no_hypothesis_and_loads_no_model():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import purpose_dspy.testing, purpose_dspy.testing.properties, purpose_dspy.testing.plugin\n"
            "import purpose_dspy.runtime.critic_check\n"
            "assert 'llama_cpp' not in sys.modules, 'a model library was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_critic_lm_and_api_base_go_into_the_lm_config(monkeypatch):
    import purpose_dspy.lm

    monkeypatch.setattr(purpose_dspy.lm, "build_lm", lambda spec, role: (spec, role))
    spec, role = build_critic_lm("openai/my-model", "http://127.0.0.1:8080/v1")
    assert (spec.model, spec.api_base, spec.cache) == ("openai/my-model", "http://127.0.0.1:8080/v1", False)
    assert role == "critic"


# -- the example file, run by pytest ---------------------------------------------------------------

def variant(tmp_path: Path, lm: str, safeguards: str, imports: str) -> Path:
    """The example file with another LM and safeguards, as a user would edit it."""
    text = EXAMPLE.read_text()
    text = re.sub(r"(?m)^    lm = .*$", f"    lm = {lm}", text)
    text = re.sub(r"(?m)^    safeguards = .*$", f"    safeguards = {safeguards}", text)
    text = re.sub(r"(?m)^    max_lm_calls = .*$", "    max_lm_calls = 440  # scripted: calls cost nothing (40 per property)", text)
    text = text.replace("from purpose_dspy.testing import CriticPropertySuite\n",
                        f"from purpose_dspy.testing import CriticPropertySuite\n{imports}\n")
    path = tmp_path / "test_my_critic.py"
    path.write_text(text)
    return path


def report(run: subprocess.CompletedProcess) -> str:
    """pytest's output without the 'E   ' gutter of a failure, so the counterexample reads as printed."""
    return re.sub(r"(?m)^E {7}", "", run.stdout)


def run_pytest(path: Path, *args: str, python: str = sys.executable, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", str(path), *args], cwd=path.parent,
                          capture_output=True, text=True, timeout=timeout, env=env, check=False)


def test_the_example_fails_with_a_shrunk_counterexample_when_a_safeguard_is_off(tmp_path):
    path = variant(tmp_path, "scripted_critic_lm(flatterer)", 'SafeguardConfig().without("injection")',
                   "from purpose_dspy.testing.scripted import flatterer, scripted_critic_lm")
    run = run_pytest(path)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "1 failed, 10 passed" in run.stdout, run.stdout[-3000:]
    assert "FAILED test_my_critic.py::TestMyCritic::test_injected_text_never_raises_phi" in run.stdout
    out = report(run)
    shrunk = "injected_text_never_raises_phi(\n    step=Step(treasure-maze/dev/0 ['north'] injected into after:"
    assert shrunk in out, out
    assert f"Open directions: south, east. {INSTRUCTIONS[0]}')" in out  # appended: the smallest splice
    assert "answer: Φ 0 -> 5 (reward 5, confidence 1, evidence 'You move north.', flags anomaly_abs)" in out
    assert any((tmp_path / ".hypothesis" / "examples").iterdir())  # kept, so the next run replays it first


def test_the_example_fails_with_a_shrunk_counterexample_for_an_inconsistent_critic(tmp_path):
    path = variant(tmp_path, "scripted_critic_lm(moody)", "None",
                   "from purpose_dspy.testing.scripted import moody, scripted_critic_lm")
    # a fixed seed: how far hypothesis shrinks within the call budget varies from seed to seed (CI failed once)
    run = run_pytest(path, "--hypothesis-seed=0")
    assert run.returncode == 1, run.stdout[-3000:]
    failed = set(re.findall(r"FAILED test_my_critic.py::TestMyCritic::test_(\w+)", run.stdout))
    assert {"identical_states_identical_phi", "phi_invariant_under_rewrites"} <= failed, run.stdout[-3000:]
    out = report(run)
    assert "identical_states_identical_phi(\n    step=Step(treasure-maze/dev/0 ['north']:" in out, out
    assert "1st answer: Φ" in out and "2nd answer: Φ" in out
    # the rewrite that shows it: one separator changed (a newline, say), in one of the two states. Hypothesis
    # may print a draw more than once (a replay, a second distinct failure) and the shrunk walk need not be
    # the shortest, so: some printed rewrite of a treasure-maze step changes exactly one separator.
    drawn = re.findall(r"Draw 1 \(rewritten\): (Step\(treasure-maze/dev/0 \[[^\]]*\] rewritten: .*)", out)
    assert drawn, out
    assert any(len(re.findall(r"\\n|\\t|  ", d)) == 1 for d in drawn), drawn


def test_the_flags_choose_the_environment_the_examples_and_the_server(tmp_path, server):
    """`--critic-lm openai/... --critic-api-base URL` (the scripted server on loopback), `--critic-env`,
    `--critic-max-examples`."""
    path = tmp_path / "test_my_critic.py"
    shutil.copy(EXAMPLE, path)
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    run = run_pytest(path, "--critic-lm", "openai/scripted", "--critic-api-base", base, "--critic-max-examples", "1",
                     "--critic-env", "treasure-maze", "-o", "log_cli=true", "--log-cli-level=INFO")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "11 passed" in run.stdout
    assert "on 1 examples" in run.stdout and "PurposeCritic on openai/scripted, guarded" in run.stdout
    assert len(server.RequestHandlerClass.requests) >= 9


@pytest.mark.local_lm
def test_the_example_passes_on_the_embedded_model(tmp_path):
    """The example as shipped: every property, the embedded model, every safeguard on (about 22 LM calls)."""
    path = tmp_path / "test_my_critic.py"
    shutil.copy(EXAMPLE, path)
    run = run_pytest(path, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "11 passed" in run.stdout


# -- the plugin, installed from the wheel in a fresh virtualenv ------------------------------------

def test_the_plugin_is_a_pytest11_entry_point_of_the_installed_package():
    points = importlib.metadata.distribution("purpose-dspy").entry_points
    assert any(p.group == "pytest11" and p.value == "purpose_dspy.testing.plugin" for p in points)


def test_pip_install_of_the_wheel_gives_pytest_the_plugin(tmp_path):
    """Build the wheel from a copy of the source, install it (no deps) into a new venv that borrows this venv's
    packages (llama-cpp, DSPy) through a .pth file, and ask that venv's pytest for the plugin's options."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("purpose_dspy", "programs", "signatures"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("purpose_dspy-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "borrowed.pth").write_text("\n".join(ours) + "\n")  # after the wheel's own files on sys.path
    found = subprocess.run([python, "-c", "import purpose_dspy.testing.plugin as p; print(p.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout  # not this checkout's
    assert found.startswith(str(venv)), found  # the wheel's copy, not this checkout
    helps = run_pytest(tmp_path / "none.py", "--help", python=python)
    assert helps.returncode == 0, helps.stderr[-2000:]
    for flag in ("--critic-lm", "--critic-api-base", "--critic-env", "--critic-max-examples"):
        assert flag in helps.stdout
