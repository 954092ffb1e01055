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
