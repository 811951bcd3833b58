"""The answer convention, the evaluation scorers and the GRPO rewards built on them."""

import doctest
from fractions import Fraction

import pytest

from helpers import answers, evaluate, grpo_trainer, rewards


@pytest.mark.parametrize("module", [answers, evaluate, rewards, grpo_trainer])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("text, value", [
    ("3/8", Fraction(3, 8)), ("0.375", Fraction(3, 8)), ("37.5%", Fraction(3, 8)), ("\\frac{3}{8}", Fraction(3, 8)),
    ("1,000", 1000), ("$12", 12), ("-4", -4), ("\\boxed{7}", 7), ("7.", 7), ("12 / 16", Fraction(3, 4)),
    ("none", None), ("1/0", None), ("", None),
])
def test_parse_number(text, value):
    assert answers.parse_number(text) == value


@pytest.mark.parametrize("completion, strict, expected", [
    ("2 + 2 = 4\nAnswer: 4", True, "4"),
    ("**Answer:** 1/6", True, "1/6"),
    ("answer: 5.", True, "5"),
    ("so the result is 4", True, None),
    ("so the result is 4", False, "4"),
    ("The answer is 3/8 because ...", False, "3/8 because"),
    (None, False, None),
])
def test_extract_final_answer(completion, strict, expected):
    assert answers.extract_final_answer(completion, strict=strict) == expected


def test_equivalent_forms_are_equal_and_others_not():
    assert answers.answers_equal("0.5", "1/2") and answers.answers_equal("50%", "1/2")
    assert not answers.answers_equal("0.33", "1/3")
    assert not answers.answers_equal(None, "1") and not answers.answers_equal("1", None)


GOOD = "There are 36 outcomes; 6 give a sum of 7. P = 6/36 = 1/6.\nAnswer: 1/6"
RIGHT_NO_FORMAT = "There are 36 outcomes and 6 give 7, so the probability is 1/6."
WRONG = "P = 5/36.\nAnswer: 5/36"
TWO_ANSWERS = "Answer: 1/6\nAnswer: 1/5"
MALFORMED = [None, 42, {"content": None}, [{"role": "assistant"}]]


def test_scorers_on_hand_written_completions():
    assert evaluate.score_numeric(GOOD, "1/6", strict=True)
    assert not evaluate.score_numeric(RIGHT_NO_FORMAT, "1/6", strict=True)
    assert evaluate.score_numeric(RIGHT_NO_FORMAT, "1/6", strict=False)
    assert not evaluate.score_numeric(WRONG, "1/6", strict=False)
    assert not evaluate.score_format(TWO_ANSWERS) and evaluate.score_format(GOOD)
    row = evaluate.score_completion(GOOD, {"final_answer": "1/6"})
    assert row["correct_strict"] and row["format_ok"] and row["kind"] == "numeric"
    concept = evaluate.score_completion("The mean of a binomial is np.", {"answer": "E[X] = np for a binomial."})
    assert concept["kind"] == "concept" and 0 < concept["token_f1"] < 1


def test_correctness_reward_good_bad_partial_and_concept_rows():
    refs = ["1/6", "1/6", "1/6", "1/6", None]
    convs = [[{"role": "assistant", "content": c}] for c in (GOOD, RIGHT_NO_FORMAT, WRONG, TWO_ANSWERS, GOOD)]
    assert rewards.correctness(convs, final_answer=refs) == [1.0, 0.5, 0.0, 0.0, None]


def test_format_and_length_rewards():
    assert rewards.format_reward([GOOD, RIGHT_NO_FORMAT, TWO_ANSWERS]) == [1.0, 0.0, 0.0]
    length = rewards.make_length_penalty(100)
    out = length([GOOD, GOOD, "no end"], completion_ids=[[0] * 20, [0] * 90, [0] * 100])
    assert out[0] == 0.0 and -0.5 < out[1] < 0 and out[2] == -1.0


def test_similarity_reward_prefers_the_right_explanation():
    refs = ["A sample space is the set of all possible outcomes of an experiment."] * 2
    out = rewards.similarity(["The sample space is the set of all outcomes of the experiment.",
                              "Bake the bread at 200 degrees for forty minutes."], answer=refs, final_answer=[None, None])
    assert out[0] > out[1] + 0.2
    assert rewards.similarity([GOOD], answer=["x"], final_answer=["1/6"]) == [None]


@pytest.mark.parametrize("text, expected", [
    ("P = 4/52 × 4/51 = 16/2652 = 4/663.\nAnswer: 4/663", (2, 0)),
    ("P = 4/36 = 1/6.\nAnswer: 1/6", (0, 1)),  # the slip the SFT model makes
    ("(12 + 12) × 5 = 24 × 5 = 120.", (2, 0)),
    ("(12 + 12) × 5 = 24 × 5 = 125.", (1, 1)),
    ("P(X = 3) = C(6, 3) (1/6)^3 (5/6)^3 = 2500/46656 = 625/11664.", (2, 0)),
    ("P = 1/8 ÷ 1/4 = 1/2, and 1 ÷ 1/3 = 3", (2, 0)),  # a written fraction is one number
    ("7 × 6 × 5 × 4/7^4 = 840/2401", (1, 0)),  # ... except next to a power
    ("C(52, 5) = (52 × 51 × 50 × 49 × 48) / 5! = 2,598,960.", (2, 0)),
    ("0.6065 - 0.2231 = 0.383", (1, 0)),  # rounded to the precision written
    ("0.6065 - 0.2231 = 0.39", (0, 1)),
    ("91 - 41: 91 - 40 = 51, 51 - 1 = 50.", (2, 0)),
    ("20% of 50 = 10; E[X] = 7/2; Φ(-1.96) = 1 - 0.975 = 0.025", (1, 0)),  # only the last is a calculation
    ("gcd(4, 44) = 4, so 4/44 = (4 ÷ 4)/(44 ÷ 4) = 1/11.", (3, 0)),
    ("The answer is 42.", (0, 0)),
    ("", (0, 0)),
    ("= = 3 + = (4 = 5 ** 99999 = 10^99999 = 1/0 = C(5000, 2)", (0, 0)),  # malformed: nothing checkable, no error
])
def test_check_equations_on_worked_solutions(text, expected):
    assert rewards.check_equations(text) == expected


def test_every_reference_solution_passes_the_arithmetic_check():
    """A reward that marks the data's own solutions as slips would teach the model to avoid correct steps."""
    import json

    from helpers.models import REPO_ROOT

    rows = [r for name in ("sft_train.json", "grpo_train.json")
            for r in json.loads((REPO_ROOT / "data" / "training_data" / name).read_text())]
    checked = [rewards.check_equations(r["answer"]) for r in rows]
    assert not [r["answer"] for r, (_, wrong) in zip(rows, checked) if wrong]
    assert sum(right > 0 for right, _ in checked) > 0.8 * len(rows)


def test_arithmetic_reward_prefers_fewer_slips_and_skips_what_it_cannot_check():
    convs = [[{"role": "assistant", "content": c}] for c in ("2 × 3 = 6, 6 + 1 = 7", "2 × 3 = 6, 6 + 1 = 8",
                                                             "2 × 3 = 5, 6 + 1 = 8", "It is 7.")]
    assert rewards.arithmetic(convs) == [1.0, 0.5, 0.0, None]
    funcs, weights = rewards.reward_functions({"correctness": 1.0, "arithmetic": 0.3}, 64)
    assert [f.__name__ for f in funcs] == ["correctness", "arithmetic"] and weights == [1.0, 0.3]
    for bad in MALFORMED:
        assert rewards.robust(rewards.arithmetic)([bad]) == [None]


def test_a_raising_reward_scores_items_as_missing_and_counts_them():
    def fragile(completions, **kwargs):
        return [1.0 if rewards.completion_text(c).startswith("A") else 0.0 for c in completions]

    fragile.__name__ = "fragile"
    safe = rewards.robust(fragile)
    logged = {}
    out = safe(["Answer: 1", 42, "x"], log_metric=lambda k, v: logged.__setitem__(k, v))
    assert out == [1.0, None, 0.0] and safe.failures == 1 and logged["rewards/fragile/failures"] == 1.0
    for bad in MALFORMED:
        assert rewards.robust(rewards.correctness)([bad], final_answer=["1"]) in ([None], [0.0])


def test_reward_weights_are_checked():
    funcs, weights = rewards.reward_functions({"correctness": 1.0, "format": 0.0, "length": 0.1}, 64)
    assert [f.__name__ for f in funcs] == ["correctness", "length"] and weights == [1.0, 0.1]
    with pytest.raises(ValueError, match="reward_weights: unknown reward"):
        rewards.reward_functions({"kindness": 1.0}, 64)
    with pytest.raises(ValueError, match="every weight is zero"):
        rewards.reward_functions({"correctness": 0.0}, 64)


RECORDS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
            "final_answer": str(a + b)} for a, b in [(1, 2), (3, 5), (10, 7), (2, 2), (6, 9), (4, 11)]]


def test_sanity_check_passes_when_rewards_separate():
    groups = [[r["answer"], "I am not sure."] for r in RECORDS]
    table = rewards.reward_sanity_check(RECORDS, {"correctness": 1.0, "format": 0.2}, 64, samples=groups)
    assert table["separates"] and table["reference_mean"] > table["shuffled_mean"]
    assert table["groups_with_spread"] == 1.0


def test_sanity_check_stops_on_rewards_that_cannot_separate():
    with pytest.raises(rewards.RewardsCannotSeparate, match="shuffled"):
        rewards.reward_sanity_check(RECORDS, {"format": 1.0}, 64)
    same = [["Answer: 0", "Answer: 0"] for _ in RECORDS]
    with pytest.raises(rewards.RewardsCannotSeparate, match="same reward"):
        rewards.reward_sanity_check(RECORDS, {"correctness": 1.0}, 64, samples=same)
