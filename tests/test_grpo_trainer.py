"""helpers.grpo_trainer overrides TRL internals: an upgrade of TRL must fail here, not change training silently."""

import importlib.metadata

import pytest


def test_trl_is_the_version_the_trainer_was_written_against():
    from helpers.grpo_trainer import TRL_VERSION

    installed = importlib.metadata.version("trl")
    assert installed == TRL_VERSION, (
        f"trl {installed} is installed; helpers/grpo_trainer.py overrides GRPOTrainer internals of trl "
        f"{TRL_VERSION}. Read its docstring, check each method it names against the new TRL, rerun "
        "tests/test_grpo.py, then update TRL_VERSION.")


@pytest.mark.parametrize("name", ["_generate_single_turn", "_generate_and_score_completions",
                                  "_get_per_token_logps_and_entropies"])
def test_the_trl_methods_it_overrides_or_calls_exist(name):
    from trl import GRPOTrainer

    assert callable(getattr(GRPOTrainer, name, None)), f"GRPOTrainer.{name} is gone"


def test_the_trl_helpers_it_calls_exist():
    from trl.models.utils import disable_gradient_checkpointing
    from trl.trainer.utils import use_adapter

    assert callable(disable_gradient_checkpointing) and callable(use_adapter)
