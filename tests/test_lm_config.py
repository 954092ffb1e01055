import time

import pytest

from purpose_dspy.errors import LMUnavailableError, UsageError
from purpose_dspy.lm import DEFAULT_MODEL, build_lm, check_endpoint, load_lm_config, LMSpec


def test_default_is_the_embedded_model_for_every_role():
    config = load_lm_config(environ={})
    assert config.for_role("actor").model == DEFAULT_MODEL == config.for_role("critic").model


def test_flags_beat_env_beat_toml(tmp_path):
    toml = tmp_path / "lm.toml"
    toml.write_text('[lm]\nmodel = "openai/from-toml"\nmax_tokens = 99\n[lm.critic]\nmodel = "openai/critic-toml"\n')
    env = {"PURPOSE_DSPY_LM": "openai/from-env"}
    config = load_lm_config(config_file=toml, environ=env)
    assert config.for_role("actor").model == "openai/from-env"
    assert config.for_role("critic").model == "openai/critic-toml"
    assert config.for_role("critic").max_tokens == 99
    config = load_lm_config(model="openai/from-flag", role_models={"critic": "openai/critic-flag"},
                            config_file=toml, environ=env)
    assert config.for_role("actor").model == "openai/from-flag"
    assert config.for_role("critic").model == "openai/critic-flag"


def test_per_role_env_var():
    config = load_lm_config(environ={"PURPOSE_DSPY_CRITIC_LM": "openai/judge"})
    assert config.for_role("critic").model == "openai/judge" and config.for_role("actor").model == DEFAULT_MODEL


def test_bad_config_files_name_the_problem(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_lm_config(config_file=tmp_path / "missing.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[lm\nmodel=")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_lm_config(config_file=bad, environ={})
    typo = tmp_path / "typo.toml"
    typo.write_text('[lm]\ntemprature = 0.5\n')
    with pytest.raises(UsageError, match="temprature"):
        load_lm_config(config_file=typo, environ={})


def test_dead_endpoint_fails_fast_and_names_it():
    started = time.perf_counter()
    with pytest.raises(LMUnavailableError, match=r"http://127\.0\.0\.1:9/v1"):
        build_lm(LMSpec(model="openai/x", api_base="http://127.0.0.1:9/v1"))
    assert time.perf_counter() - started < 5


def test_api_base_must_be_a_url():
    with pytest.raises(UsageError, match="http"):
        check_endpoint("localhost:8080")


def test_local_model_with_api_base_is_a_usage_error():
    with pytest.raises(UsageError, match="local"):
        build_lm(LMSpec(model="local/smollm2-135m", api_base="http://127.0.0.1:9/v1"))


def test_unknown_local_model_lists_the_known_ones():
    with pytest.raises(UsageError, match="smollm2-135m"):
        build_lm(LMSpec(model="local/gpt-5"))
