"""The CLI through click's runner: help, and one-line failures with the right exit codes."""

from click.testing import CliRunner

from purpose_dspy.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_explains_every_command():
    result = invoke("--help")
    assert result.exit_code == 0 and "run" in result.output
    result = invoke("run", "--help")
    assert result.exit_code == 0 and "--api-base" in result.output and "Examples" in result.output


def test_dead_endpoint_is_one_line_naming_it_with_a_nonzero_exit():
    result = invoke("run", "--env", "treasure-maze", "--lm", "openai/x", "--api-base", "http://127.0.0.1:9/v1")
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "http://127.0.0.1:9/v1" in lines[0] and "Traceback" not in result.output


def test_unknown_environment_is_a_usage_error():
    result = invoke("run", "--env", "chess")
    assert result.exit_code == 2 and "known families" in result.output


def test_bad_param_is_a_usage_error():
    result = invoke("run", "--param", "size")
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_compile_help_says_the_gate_needs_20_dev_seeds_and_that_they_cost_time():
    result = invoke("compile", "--help")
    text = " ".join(result.output.split())  # however click wraps it
    assert result.exit_code == 0 and "[default: 20; x>=1]" in text and "makes the compile slower" in text
    assert "one-sided exact sign test gives p <= 0.1" in text


def test_compile_prints_the_gates_figures(tmp_path, monkeypatch):
    from rule_lm import rule_lms

    import purpose_dspy.jobs as job

    lms, _ = rule_lms()
    monkeypatch.setattr(job, "build_role_lms", lambda config, roles=(): {r: lms[r] for r in roles})
    result = invoke("compile", "tasksets/treasure-maze.toml", "--out", str(tmp_path / "maze"), "--train", "2",
                    "--dev", "3", "--run-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "gate: 0 gained, 0 lost of 3 paired dev seeds, one-sided p = 1 (alpha 0.1)" in result.output
    assert "NOT promoted (0 gained, 0 lost on 3 paired dev seeds" in result.output
