"""Property tests of a purpose critic, in your own suite: `pytest examples/test_my_critic.py`.

Another model: `pytest --critic-lm openai/my-model --critic-api-base http://127.0.0.1:8080/v1 <this file>`.
"""

from purpose_dspy.programs import PurposeCritic
from purpose_dspy.safeguards import SafeguardConfig
from purpose_dspy.testing import CriticPropertySuite


class TestMyCritic(CriticPropertySuite):
    critic = PurposeCritic()  # your critic module, e.g. purpose_dspy.load("compiled/treasure-maze").program.critic
    lm = "local/smollm2-135m"  # the embedded model; --critic-lm overrides it
    env = "treasure-maze"  # your environment: an id, an Environment or its class (--critic-env)
    safeguards = SafeguardConfig()  # every safeguard on; None checks the critic alone
    max_lm_calls = 22  # for the whole class, shared by the 11 properties
    max_examples = 2  # per property (--critic-max-examples)
    max_steps = 2  # the longest walk drawn
