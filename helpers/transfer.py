"""Questions the workbook never trains on: the transfer evaluation set.

Why this module exists: the held-out set of 01_data_prep is drawn from the same
templates as the training data, so a model can score well on it by recognising
a template and filling it in. A user asks in their own words. This module holds
a fixed set of questions written apart from the generator in helpers.problems:
other wording and sentence order, other number ranges, irrelevant details,
other question forms (chance / how likely / as a percent / as a decimal / how
many ways / how many outcomes), look-alike counting questions (sequences vs.
arrangements vs. selections) and kinds of problem no training family contains
(``family="new:<kind>"``). Accuracy on it measures transfer; it is never used
for training, and helpers.data.build_training_sets refuses training rows that
repeat one of these questions (``helpers.data.transfer_leaks``).

* ``transfer_set(n)``: the fixed evaluation set (about 320 questions), in an
  order whose first ``n`` are balanced across kinds (small presets use a
  prefix).
* ``retention_candidates()``: a second, disjoint pool of the same kinds, from
  which the questions the base model already answers right are picked to check
  that training does not make it forget them.
* ``TEMPLATES`` and ``DISTRACTORS``: every piece of wording, as plain template
  strings with ``{placeholders}``, so a test can check that none of it appears
  in the training data.

Every record: ``question``, ``final_answer`` (canonical, from
helpers.answers.format_final_answer), ``family``, ``kind``, ``form`` (what is
asked: ``value``, ``count``, ``probability``, ``percent`` or ``decimal``),
``source`` (``transfer:<kind>``) and ``params`` (JSON-safe inputs from which a
test re-derives the answer). Answers are exact (``Fraction``, ``math.comb``,
``math.perm``). A question asking for a percent or a decimal has an answer
whose decimal expansion ends; its ``final_answer`` stays the canonical fraction
(``answers_equal`` reads ``25%`` and ``0.25`` as ``1/4``).

Introduced in 03_sft_eval.
"""

from __future__ import annotations

import copy
import math
import random
from fractions import Fraction
from functools import lru_cache

from helpers.answers import format_final_answer, terminates
from helpers.data import _QuestionIndex

__all__ = ["TEMPLATES", "DISTRACTORS", "FORM_REQUESTS", "KINDS", "all_templates",
           "transfer_set", "retention_candidates"]

_TRANSFER_SEED = 20261202
_RETENTION_SEED = 90210
_TRANSFER_PER_KIND = 16
_RETENTION_PER_KIND = 15
_MAX_TRIES = 200

# --------------------------------------------------------------------------- wording
# Every template's longest literal piece is at least four words, so the leakage
# test can look for it in the training questions (tests/test_transfer.py).

TEMPLATES: dict[str, tuple[str, ...]] = {
    # arithmetic
    "arith_sub": (
        "What do you get if you take {b} away from {a}?",
        "{a}, and then {b} is taken away from it. What number is left over?",
        "Start at {a} and count back by {b}. Which number do you land on?",
        "If I had {a} and gave away {b}, how many would I still have?",
    ),
    "arith_add": (
        "Put {a} and {b} together. What total do you end up with?",
        "If you add {b} onto {a}, what number comes out?",
        "I am thinking of {a}, and then I add {b} to it. Which number am I thinking of now?",
        "When {a} and {b} are combined into one pile, what is the total?",
    ),
    "arith_mul": (
        "There are {a} groups with {b} in every group. How many is that all together?",
        "If you have {b} lots of {a}, how many is that in total?",
        "If each of {a} bags has {b} sweets inside, how many sweets are there in the bags altogether?",
    ),
    "arith_div": (
        "{a} divided into {b} equal shares gives how much per share?",
        "How many groups of {b} can be made out of {a}, with nothing left over?",
        "When {a} is cut into {b} pieces of the same size, how large is one piece?",
    ),
    # word problems
    "shop_change": (
        "{name} buys {c} {items} that cost ${p} apiece and pays with a ${bill} note. {extra}"
        "How much change should {name} get back?",
        "How many dollars does {name} get back after paying for {c} {items} at ${p} each with a ${bill} note?",
        "With a ${bill} note in hand, {name} picks up {c} {items}, each priced at ${p}. {extra}"
        "What is left of the ${bill} once everything is paid for?",
    ),
    "shop_total": (
        "{name} picks up {c1} {items1} at ${p1} each and {c2} {items2} at ${p2} each. {extra}"
        "What does the whole basket come to, in dollars?",
        "What is the total bill, in dollars, for {c1} {items1} costing ${p1} each plus {c2} {items2} "
        "costing ${p2} each?",
    ),
    "share_equal": (
        "{t} {things} are handed out so that each of {k} children gets the same number and none are left. "
        "{extra}How many does one child receive?",
        "How many {things} does each child end up with when {k} children share {t} {things} fairly?",
    ),
    "share_after": (
        "{name} baked {t} cookies, ate {e} of them, and then packed the rest evenly into {k} boxes. {extra}"
        "How many cookies went into each box?",
        "How many cookies are in each box if {name} bakes {t}, keeps {e} for later, and splits what remains "
        "evenly across {k} boxes?",
    ),
    # fractions
    "frac_of": (
        "A ribbon {n} cm long is cut, and {name} keeps {fw} of it. How many centimetres of ribbon does "
        "{name} keep?",
        "An hour has 60 minutes. How many minutes long is {fw} of an hour?",
        "{extra}Out of a bag of {n} sweets, {name} eats {fw} of the bag. How many sweets does {name} eat?",
    ),
    "frac_together": (
        "{name} painted {a} of a fence on Monday and {b} of it on Tuesday. What fraction of the fence "
        "is painted now?",
        "What part of a garden has been dug if {name} digs {a} of it in the morning and another {b} of it "
        "after lunch?",
    ),
    "frac_left": (
        "A water bottle is {a} full. What fraction of the bottle is still empty?",
        "What part of the wall is left unpainted after {name} paints {a} of it in the morning and {b} of it "
        "in the afternoon?",
    ),
    # percentages
    "pct_discount": (
        "The tag on a jacket says ${p}, but everything in the shop is {d}% off today. {extra}"
        "How much does the jacket cost now?",
        "How much do you pay for a ${p} pair of boots during a sale of {d}% off?",
    ),
    "pct_of": (
        "In a school of {n} pupils, {d}% walk to school each day. How many pupils walk?",
        "How many of the {n} seats in a theatre are taken if the theatre is {d}% full?",
    ),
    "pct_decimal": (
        "If you write {d}% as a decimal instead of a percentage, what do you get?",
        "Which decimal number means the same as {d} percent?",
    ),
    "pct_what": (
        "{k} of the {n} apples in a crate are bruised. What percentage of the apples are bruised?",
        "On a quiz with {n} questions, {name} got {k} right. What percent of the questions did {name} "
        "get right?",
    ),
    # dice
    "dice_one": (
        "{extra}A single fair die is rolled once. How likely is it to land on {what}?",
        "What is the chance that one roll of an ordinary die gives {what}?",
        "Roll one standard die. What are the odds, written as a probability, of getting {what}?",
    ),
    "dice_sum": (
        "Two fair six-sided dice are thrown and the numbers on top are added together. What is the chance "
        "the total is {v}?",
        "What is the probability of a total of exactly {v} when the faces of two fair dice are added up?",
        "{name} rolls a red die and a blue die and adds the two numbers. How likely is a sum of {v}?",
    ),
    "dice_product": (
        "Two ordinary dice are rolled and the two numbers are multiplied. What is the probability that the "
        "product equals {v}?",
        "If you multiply the numbers shown on two fair dice, how likely is it that you get {v}?",
        "What is the chance that the product of two fair dice rolls comes out to {v}?",
    ),
    # coins
    "coin_sequences": (
        "A coin is tossed {n} times and each result is written down in order, for example H, T, H. "
        "How many different lists of results are possible?",
        "How many different sequences of heads and tails can you get by flipping a coin {n} times?",
        "{n} coins are tossed one after another. Counting the order, how many possible outcomes are there?",
    ),
    "coin_sequences_k": (
        "How many of the possible head-tail sequences from {n} coin flips contain exactly {k} heads?",
        "{name} flips a coin {n} times and writes down H or T each time. In how many of the possible "
        "records do heads appear exactly {k} times?",
    ),
    "coin_exactly": (
        "Toss a fair coin {n} times. What is the chance of seeing heads exactly {k} times?",
        "What is the chance that {k} of {n} fair coins land heads up and the rest land tails?",
    ),
    "coin_at_least": (
        "{n} fair coins are dropped on the table. How likely is it that at least {k} of them show heads?",
        "Heads {k} or more times in {n} tosses of a fair coin: how likely is that?",
    ),
    # cards
    "card_one": (
        "A card is pulled at random from a well-shuffled standard deck of 52. {extra}What is the chance "
        "that it is {what}?",
        "How likely is it that a card picked at random from an ordinary 52-card pack is {what}?",
    ),
    "card_two": (
        "Two cards are drawn from a standard 52-card deck, {how}. What is the probability that both "
        "are {what}?",
        "{name} draws a card from a full 52-card deck, {how}, and then a second card. How likely is it "
        "that both cards are {what}?",
    ),
    # urns
    "urn_one": (
        "In a jar there are {r} red marbles, {b} blue marbles and {g} green marbles. {extra}"
        "{name} reaches in without looking and takes one. How likely is it to be {c}?",
        "Without peeking, {name} pulls one marble from a bag holding {r} red, {b} blue and {g} green "
        "marbles. What is the chance of a {c} one?",
    ),
    "urn_two": (
        "A bag holds {r} red and {b} blue counters. {name} takes one counter out, {how}, then takes another. "
        "What is the probability that both counters are {c}?",
        "Two counters are taken one at a time from a bag of {r} red and {b} blue counters, and {how2}. "
        "How likely is it that both are {c}?",
    ),
    # counting
    "select": (
        "A teacher needs {k} helpers from a class of {n} pupils to carry chairs. How many different groups "
        "of helpers could she choose?",
        "How many different teams of {k} can be picked from {n} volunteers turning up for a beach clean-up?",
        "{extra}A pizza shop offers {n} toppings and you may pick any {k} different ones. How many different "
        "{k}-topping pizzas can be ordered?",
        "Out of {n} friends, {name} can invite only {k} to the cinema. How many different sets of friends "
        "could go along?",
    ),
    "roles": (
        "From {n} club members, {roles} are to be chosen, and no one can hold two jobs. In how many ways "
        "can the jobs be filled?",
        "There are {n} people in a group, and {roles} must be picked from them, one person per job. "
        "How many ways are there?",
    ),
    "podium": (
        "{n} runners are in a race with no ties. How many different ways can the gold, silver and bronze "
        "medals be handed out?",
        "In how many ways can first and second prize go to two different pupils out of {n}?",
    ),
    "codes": (
        "A bike lock has {k} dials and each dial shows a digit from 0 to 9. How many different settings "
        "does the lock have?",
        "How many {k}-letter passwords can be made from the letters A to {last} if a letter may be used "
        "more than once?",
        "A PIN uses {k} digits, each chosen from 1 to {n}, and digits may repeat. How many possible PINs "
        "are there?",
        "A secret code is {k} symbols long, each symbol is one of {n} shapes, and a shape can be used again. "
        "How many codes are possible?",
    ),
    # complement
    "alo_coin": (
        "{n} children each toss a fair coin. What is the chance that at least one child gets tails?",
        "How likely is it that {n} flips of a fair coin include at least one head?",
    ),
    "alo_die": (
        "You roll a die {n} times. How likely is it that at least one of the rolls is a 6?",
        "What is the probability that a six turns up at least once when a fair die is thrown {n} times?",
    ),
    "alo_bulb": (
        "Each of {n} old light bulbs has a {pct}% chance of being broken, independently of the others. "
        "What is the probability that at least one is broken?",
        "{extra}A seed sprouts with probability {p}, and {name} plants {n} seeds that grow independently. "
        "What is the chance that at least one seed sprouts?",
    ),
    # expectation
    "exp_die": (
        "In a game you roll one fair die and win ${w} if it shows a {v}, and nothing otherwise. What is "
        "the expected amount you win per game?",
        "On average, how many dollars does a player win per roll in a game that pays ${w} when a fair die "
        "shows {v} and pays nothing otherwise?",
    ),
    "exp_coin": (
        "A fair coin is flipped: heads pays you ${a}, tails costs you ${b}. What is the expected value of "
        "one flip, in dollars?",
        "What are the expected winnings of a bet on a fair coin that wins ${a} on heads and loses ${b} "
        "on tails?",
    ),
    "exp_raffle": (
        "A raffle sells {n} tickets and exactly one ticket wins a ${w} prize. {extra}What is the expected "
        "prize money for one ticket?",
    ),
    # conditional probability
    "cond_die": (
        "A fair die is rolled out of sight and you are told the result is {given}. What is the probability "
        "that it is {event}?",
        "Given that a fair die landed on {given}, how likely is it that it shows {event}?",
    ),
    "cond_group": (
        "In a club of {t} people, {a} play chess, and {b} of the chess players also play the piano. {extra}"
        "If one chess player is picked at random, what is the chance that they play the piano?",
        "Of the {a} pupils who take the bus, {b} have a dog; the school has {t} pupils in all. A bus "
        "pupil is chosen at random. How likely is it that this pupil has a dog?",
    ),
    # new: spinner with unequal sectors
    "spin_one": (
        "A spinner has {sectors}. If it is spun once, how likely is it to stop on {c}?",
        "What is the chance of landing on {c} with one spin of a wheel that has {sectors}?",
    ),
    "spin_two": (
        "A spinner has {sectors}. It is spun twice. What is the probability that it stops on {c} both times?",
    ),
    # new: mean and median
    "mean": (
        "{name} scored {vals} on {k} quizzes. What is the mean score?",
        "What is the average (mean) of these numbers: {vals}?",
    ),
    "median": (
        "The temperatures on {k} days were {vals} degrees. What is the median temperature?",
        "Find the middle value (the median) of this list: {vals}.",
    ),
    # new: counting integers by divisibility
    "div_one": (
        "Counting from 1 to {N}, how many numbers do you meet that are multiples of {a}?",
    ),
    "div_or": (
        "Of the whole numbers from 1 to {N}, how many can be divided exactly by {a} or by {b} (or by both)?",
        "Among the integers 1, 2, 3, up to {N}, how many are divisible by at least one of {a} and {b}?",
    ),
    "div_neither": (
        "Take the integers from 1 up to {N} and cross out every one divisible by {a} or by {b}. How many are "
        "not crossed out?",
    ),
    # new: rectangles
    "rect_area": (
        "A rectangular garden is {w} m wide and {l} m long. What is its area in square metres?",
        "A floor {l} m by {w} m is covered with square tiles that are 1 m on each side. How many tiles "
        "are needed?",
    ),
    "rect_perimeter": (
        "How many metres of fencing are needed to go once around a rectangular field {l} m by {w} m?",
        "{extra}A rectangle is {l} cm long and {w} cm wide. What is the distance all the way around its edge, "
        "in centimetres?",
    ),
    "rect_side": (
        "A rectangle has an area of {area} square centimetres and one side {w} cm long. How long is the "
        "other side, in centimetres?",
    ),
}

#: Irrelevant sentences some questions carry (they change nothing in the answer).
DISTRACTORS: tuple[str, ...] = (
    "Earlier that week the shop had been open for {x} hours. ",
    "It was a rainy Tuesday and {x} people were waiting in the queue. ",
    "{other} lives {x} kilometres away and was not there that day. ",
    "The room it happened in was number {x}, on the second floor. ",
    "For what it is worth, the date was the {x}th of the month. ",
)

#: Sentences asking for the answer in a form other than a fraction (used only when that form is exact).
FORM_REQUESTS: dict[str, tuple[str, ...]] = {
    "percent": (" Please reply with a percentage.", " I would like the answer as a percent."),
    "decimal": (" Please reply with a decimal number.", " State the result in decimal notation."),
}

_NAMES = ("Priya", "Tom", "Aiko", "Diego", "Fatima", "Lars", "Mei", "Kwame", "Sofia", "Ravi")
_ITEMS = (("pencil", "pencils"), ("mango", "mangoes"), ("notebook", "notebooks"), ("stamp", "stamps"),
          ("candle", "candles"), ("sock", "socks"))
_THINGS = ("stickers", "marbles", "crayons", "shells", "cards")
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_FRACTION_WORDS = {(1, 2): "one half", (1, 3): "one third", (2, 3): "two thirds", (1, 4): "one quarter",
                   (3, 4): "three quarters", (1, 5): "one fifth", (2, 5): "two fifths", (3, 5): "three fifths",
                   (1, 6): "one sixth", (5, 6): "five sixths", (1, 10): "one tenth", (3, 10): "three tenths"}


def all_templates() -> tuple[str, ...]:
    """Every template string of the module (questions, distractors, form requests), for the leakage test."""
    out = [t for group in TEMPLATES.values() for t in group]
    out += list(DISTRACTORS)
    out += [t for group in FORM_REQUESTS.values() for t in group]
    return tuple(out)


def _words(n: int) -> str:
    """0-99 in words: 47 -> 'forty-seven'."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")


def _fill(rng: random.Random, group: str, **fields) -> tuple[str, str]:
    """``(question, template id)``: one of the group's templates, formatted (``{extra}`` gets a distractor)."""
    i = rng.randrange(len(TEMPLATES[group]))
    template = TEMPLATES[group][i]
    if "{extra}" in template:
        distractor = rng.choice(DISTRACTORS)
        fields["extra"] = distractor.format(x=rng.randint(3, 28), other=rng.choice(_NAMES))
    return template.format(**fields), f"{group}#{i}"


def _with_form(rng: random.Random, question: str, value: Fraction, chance: float = 0.4) -> tuple[str, str]:
    """``(question, form)``: sometimes ask for a percent or a decimal, only when that form is exact."""
    if terminates(value) and value.denominator > 1 and rng.random() < chance:
        form = rng.choice(("percent", "decimal"))
        return question + rng.choice(FORM_REQUESTS[form]), form
    return question, "probability"


# --------------------------------------------------------------------------- kinds
# Each returns (question, value, form, params); params always has "template".


def _arithmetic(rng):
    op = rng.choice(("sub", "add", "mul", "div"))
    band = rng.choice(("small", "two", "three", "four"))
    lo, hi = {"small": (2, 20), "two": (21, 99), "three": (100, 999), "four": (1000, 9999)}[band]
    if op in ("add", "sub"):
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if op == "sub" and a < b:
            a, b = b, a
        if a == b:
            a += 1
        value = a + b if op == "add" else a - b
    elif op == "mul":
        a = rng.randint(2, 12)
        b = rng.randint(2, 20) if band in ("small", "two") else rng.randint(11, 99)
        value = a * b
    else:
        b = rng.randint(2, 12)
        q = rng.randint(2, 15) if band in ("small", "two") else rng.randint(16, 120)
        a, value = b * q, q
    in_words = max(a, b) <= 99 and rng.random() < 0.35
    show = (lambda x: _words(x)) if in_words else str
    q, t = _fill(rng, f"arith_{op}", a=show(a), b=show(b))
    if in_words:
        q = q[0].upper() + q[1:]
    return q, Fraction(value), "value", {"template": t, "op": op, "a": a, "b": b, "in_words": in_words}


def _shopping(rng):
    name = rng.choice(_NAMES)
    if rng.random() < 0.55:
        c, p = rng.randint(2, 6), rng.randint(1, 9)
        bill = next(x for x in (10, 20, 50, 100) if x > c * p)
        item = rng.choice(_ITEMS)[1]
        q, t = _fill(rng, "shop_change", name=name, c=c, items=item, p=p, bill=bill)
        return q, Fraction(bill - c * p), "value", {"template": t, "mode": "change", "bill": bill,
                                                    "counts": [c], "prices": [p]}
    (i1, i2) = rng.sample(range(len(_ITEMS)), 2)
    c1, c2, p1, p2 = rng.randint(2, 5), rng.randint(1, 4), rng.randint(1, 8), rng.randint(2, 12)
    q, t = _fill(rng, "shop_total", name=name, c1=c1, items1=_ITEMS[i1][1], p1=p1, c2=c2,
                 items2=_ITEMS[i2][1] if c2 > 1 else _ITEMS[i2][0], p2=p2)
    return q, Fraction(c1 * p1 + c2 * p2), "value", {"template": t, "mode": "total", "bill": None,
                                                     "counts": [c1, c2], "prices": [p1, p2]}


def _sharing(rng):
    k = rng.randint(2, 9)
    if rng.random() < 0.5:
        t_ = k * rng.randint(2, 12)
        q, t = _fill(rng, "share_equal", t=t_, k=k, things=rng.choice(_THINGS))
        return q, Fraction(t_, k), "value", {"template": t, "total": t_, "removed": 0, "k": k}
    e = rng.randint(1, 9)
    t_ = k * rng.randint(2, 8) + e
    q, t = _fill(rng, "share_after", name=rng.choice(_NAMES), t=t_, e=e, k=k)
    return q, Fraction(t_ - e, k), "value", {"template": t, "total": t_, "removed": e, "k": k}


def _fraction_text(rng, f: Fraction) -> str:
    key = (f.numerator, f.denominator)
    if key in _FRACTION_WORDS and rng.random() < 0.5:
        return _FRACTION_WORDS[key]
    return f"{f.numerator}/{f.denominator}"


def _fractions(rng):
    mode = rng.choice(("of", "together", "left"))
    name = rng.choice(_NAMES)
    if mode == "of":
        f = Fraction(*rng.choice(sorted(_FRACTION_WORDS)))
        i = rng.randrange(len(TEMPLATES["frac_of"]))
        n = 60 if i == 1 else f.denominator * rng.randint(2, 12)
        template = TEMPLATES["frac_of"][i]
        fields = {"n": n, "fw": _fraction_text(rng, f), "name": name}
        if "{extra}" in template:
            fields["extra"] = rng.choice(DISTRACTORS).format(x=rng.randint(3, 28), other=rng.choice(_NAMES))
        return (template.format(**fields), f * n, "value",
                {"template": f"frac_of#{i}", "mode": mode, "fractions": [[f.numerator, f.denominator]], "n": n})
    dens = (2, 3, 4, 5, 6, 8, 10, 12)
    while True:
        a = Fraction(rng.randint(1, 5), rng.choice(dens))
        b = Fraction(rng.randint(1, 5), rng.choice(dens))
        if 0 < a < 1 and 0 < b < 1 and a + b < 1:
            break
    if mode == "together":
        q, t = _fill(rng, "frac_together", name=name, a=_fraction_text(rng, a), b=_fraction_text(rng, b))
        return q, a + b, "value", {"template": t, "mode": mode,
                                   "fractions": [[a.numerator, a.denominator], [b.numerator, b.denominator]]}
    i = rng.randrange(2)
    if i == 0:
        q = TEMPLATES["frac_left"][0].format(a=_fraction_text(rng, a))
        return q, 1 - a, "value", {"template": "frac_left#0", "mode": mode,
                                   "fractions": [[a.numerator, a.denominator]]}
    q = TEMPLATES["frac_left"][1].format(name=name, a=_fraction_text(rng, a), b=_fraction_text(rng, b))
    return q, 1 - a - b, "value", {"template": "frac_left#1", "mode": mode,
                                   "fractions": [[a.numerator, a.denominator], [b.numerator, b.denominator]]}


def _percentages(rng):
    mode = rng.choice(("discount", "of", "decimal", "what"))
    d = rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 75))
    if mode == "discount":
        p = rng.choice((20, 40, 60, 80, 120, 200, 30, 50))
        q, t = _fill(rng, "pct_discount", p=p, d=d)
        return q, Fraction(p) * (100 - d) / 100, "value", {"template": t, "mode": mode, "n": p, "d": d}
    if mode == "of":
        n = rng.choice((20, 40, 60, 80, 120, 200, 300, 400, 500))
        q, t = _fill(rng, "pct_of", n=n, d=d)
        return q, Fraction(n * d, 100), "value", {"template": t, "mode": mode, "n": n, "d": d}
    if mode == "decimal":
        d = rng.choice((5, 12, 35, 45, 60, 8, 125, 3, 70, 99))
        q, t = _fill(rng, "pct_decimal", d=d)
        return q, Fraction(d, 100), "decimal", {"template": t, "mode": mode, "n": None, "d": d}
    n = rng.choice((10, 20, 25, 40, 50))
    k = rng.randint(1, n - 1)
    q, t = _fill(rng, "pct_what", n=n, k=k, name=rng.choice(_NAMES))
    return q, Fraction(k, n), "percent", {"template": t, "mode": mode, "n": n, "k": k}


_DIE_EVENTS = {
    "ge": "a {v} or higher",
    "le": "a {v} or lower",
    "even": "an even number",
    "odd": "an odd number",
    "prime": "a prime number",
}


def _die_event(event: str, v: int | None, face: int) -> bool:
    return {"ge": lambda: face >= v, "le": lambda: face <= v, "even": lambda: face % 2 == 0,
            "odd": lambda: face % 2 == 1, "prime": lambda: face in (2, 3, 5)}[event]()


def _dice(rng):
    mode = rng.choice(("one", "sum", "product"))
    name = rng.choice(_NAMES)
    if mode == "one":
        event = rng.choice(sorted(_DIE_EVENTS))
        v = rng.randint(2, 5) if event in ("ge", "le") else None
        value = Fraction(sum(_die_event(event, v, f) for f in range(1, 7)), 6)
        q, t = _fill(rng, "dice_one", what=_DIE_EVENTS[event].format(v=v))
    elif mode == "sum":
        event, v = "sum", rng.randint(2, 12)
        value = Fraction(sum(a + b == v for a in range(1, 7) for b in range(1, 7)), 36)
        q, t = _fill(rng, "dice_sum", v=v, name=name)
    else:
        event, v = "product", rng.choice((1, 2, 3, 4, 6, 8, 10, 12, 15, 18, 24, 36))
        value = Fraction(sum(a * b == v for a in range(1, 7) for b in range(1, 7)), 36)
        q, t = _fill(rng, "dice_product", v=v)
    q, form = _with_form(rng, q, value)
    return q, value, form, {"template": t, "mode": mode, "event": event, "v": v}


def _coin_count(rng):
    n = rng.randint(2, 6)
    if rng.random() < 0.55:
        q, t = _fill(rng, "coin_sequences", n=n)
        return q, Fraction(2 ** n), "count", {"template": t, "n": n, "k": None}
    k = rng.randint(1, n - 1)
    q, t = _fill(rng, "coin_sequences_k", n=n, k=k, name=rng.choice(_NAMES))
    return q, Fraction(math.comb(n, k)), "count", {"template": t, "n": n, "k": k}


def _coin_probability(rng):
    n = rng.randint(2, 5)
    if rng.random() < 0.5:
        mode, k = "exactly", rng.randint(1, n)
        value = Fraction(math.comb(n, k), 2 ** n)
        q, t = _fill(rng, "coin_exactly", n=n, k=k)
    else:
        mode, k = "at_least", rng.randint(1, n)
        value = Fraction(sum(math.comb(n, j) for j in range(k, n + 1)), 2 ** n)
        q, t = _fill(rng, "coin_at_least", n=n, k=k)
    q, form = _with_form(rng, q, value, chance=0.5)
    return q, value, form, {"template": t, "mode": mode, "n": n, "k": k}


_CARD_ONE = {"club": "a club", "red": "a red card", "ace": "an ace", "picture": "a picture card (jack, queen or king)",
             "seven": "a seven", "heart_or_diamond": "a heart or a diamond", "black_king": "a black king"}
_CARD_TWO = {"hearts": "hearts", "aces": "aces", "red": "red", "spades": "spades"}
_CARD_HOW = {True: "putting the first card back and reshuffling before the second draw",
             False: "without putting the first card back"}
_CARD_HOW_FIRST = {True: "puts it back and shuffles", False: "keeps it out of the deck"}
_SUIT_COUNT = {"hearts": 13, "aces": 4, "red": 26, "spades": 13}
_CARD_ONE_COUNT = {"club": 13, "red": 26, "ace": 4, "picture": 12, "seven": 4, "heart_or_diamond": 26,
                   "black_king": 2}


def _cards(rng):
    if rng.random() < 0.5:
        event = rng.choice(sorted(_CARD_ONE))
        value = Fraction(_CARD_ONE_COUNT[event], 52)
        q, t = _fill(rng, "card_one", what=_CARD_ONE[event])
        q, form = _with_form(rng, q, value)
        return q, value, form, {"template": t, "draws": 1, "event": event, "replace": None}
    event, replace = rng.choice(sorted(_CARD_TWO)), rng.random() < 0.5
    good = _SUIT_COUNT[event]
    value = Fraction(good, 52) * Fraction(good if replace else good - 1, 52 if replace else 51)
    i = rng.randrange(2)
    how = (_CARD_HOW if i == 0 else _CARD_HOW_FIRST)[replace]
    q = TEMPLATES["card_two"][i].format(how=how, what=_CARD_TWO[event], name=rng.choice(_NAMES))
    q, form = _with_form(rng, q, value)
    return q, value, form, {"template": f"card_two#{i}", "draws": 2, "event": event, "replace": replace}


_URN_HOW = {True: "puts it back and shakes the bag", False: "keeps it out of the bag"}
_URN_HOW2 = {True: "the first counter is put back before the second is taken",
             False: "the first counter is not put back"}


def _urns(rng):
    name = rng.choice(_NAMES)
    if rng.random() < 0.5:
        r, b, g = rng.randint(1, 8), rng.randint(1, 8), rng.randint(1, 8)
        colour = rng.choice(("red", "blue", "green"))
        value = Fraction({"red": r, "blue": b, "green": g}[colour], r + b + g)
        q, t = _fill(rng, "urn_one", r=r, b=b, g=g, c=colour, name=name)
        q, form = _with_form(rng, q, value)
        return q, value, form, {"template": t, "counts": {"red": r, "blue": b, "green": g},
                                "draws": 1, "colour": colour, "replace": None}
    r, b = rng.randint(2, 7), rng.randint(2, 7)
    colour, replace = rng.choice(("red", "blue")), rng.random() < 0.5
    good, total = (r if colour == "red" else b), r + b
    value = Fraction(good, total) * (Fraction(good, total) if replace else Fraction(good - 1, total - 1))
    q, t = _fill(rng, "urn_two", r=r, b=b, c=colour, name=name, how=_URN_HOW[replace], how2=_URN_HOW2[replace])
    q, form = _with_form(rng, q, value)
    return q, value, form, {"template": t, "counts": {"red": r, "blue": b}, "draws": 2, "colour": colour,
                            "replace": replace}


def _selections(rng):
    n = rng.randint(4, 10)
    k = rng.randint(2, min(4, n - 1))
    q, t = _fill(rng, "select", n=n, k=k, name=rng.choice(_NAMES))
    return q, Fraction(math.comb(n, k)), "count", {"template": t, "n": n, "k": k}


_ROLES = {2: ("a captain and a vice-captain", "a president and a secretary"),
          3: ("a president, a secretary and a treasurer", "a singer, a drummer and a guitarist")}


def _roles(rng):
    if rng.random() < 0.6:
        k = rng.choice((2, 3))
        n = rng.randint(k + 1, 9)
        q, t = _fill(rng, "roles", n=n, roles=rng.choice(_ROLES[k]))
    else:
        i = rng.randrange(2)
        k, n = (3, rng.randint(4, 10)) if i == 0 else (2, rng.randint(3, 12))
        q, t = TEMPLATES["podium"][i].format(n=n), f"podium#{i}"
    return q, Fraction(math.perm(n, k)), "count", {"template": t, "n": n, "k": k}


def _codes(rng):
    i = rng.randrange(len(TEMPLATES["codes"]))
    k = rng.randint(2, 4)
    n = 10 if i == 0 else rng.randint(3, 9)
    q = TEMPLATES["codes"][i].format(k=k, n=n, last=chr(ord("A") + n - 1))
    return q, Fraction(n ** k), "count", {"template": f"codes#{i}", "n": n, "k": k}


def _complement(rng):
    mode = rng.choice(("coin", "die", "bulb"))
    if mode == "coin":
        n = rng.randint(2, 6)
        p = Fraction(1, 2)
        q, t = _fill(rng, "alo_coin", n=n)
    elif mode == "die":
        n = rng.randint(2, 3)
        p = Fraction(1, 6)
        q, t = _fill(rng, "alo_die", n=n)
    else:
        n = rng.randint(2, 3)
        p = Fraction(rng.choice((1, 2, 5)), 10)
        q, t = _fill(rng, "alo_bulb", n=n, pct=int(p * 100), p=f"{float(p):g}", name=rng.choice(_NAMES))
    value = 1 - (1 - p) ** n
    q, form = _with_form(rng, q, value, chance=0.5)
    return q, value, form, {"template": t, "mode": mode, "n": n, "p": [p.numerator, p.denominator]}


def _expectation(rng):
    mode = rng.choice(("die", "coin", "raffle"))
    if mode == "die":
        w, v = rng.choice((6, 12, 18, 30, 3, 10)), rng.randint(1, 6)
        q, t = _fill(rng, "exp_die", w=w, v=v)
        outcomes = [[w if f == v else 0, [1, 6]] for f in range(1, 7)]
    elif mode == "coin":
        a, b = rng.randint(2, 10), rng.randint(1, 8)
        q, t = _fill(rng, "exp_coin", a=a, b=b)
        outcomes = [[a, [1, 2]], [-b, [1, 2]]]
    else:
        n, w = rng.choice((10, 20, 50, 100)), rng.choice((50, 100, 200, 500))
        q, t = _fill(rng, "exp_raffle", n=n, w=w)
        outcomes = [[w, [1, n]], [0, [n - 1, n]]]
    value = sum(Fraction(x) * Fraction(*pr) for x, pr in outcomes)
    return q, value, "value", {"template": t, "mode": mode, "outcomes": outcomes}


_GIVEN = {"even": ("an even number", lambda f: f % 2 == 0), "odd": ("an odd number", lambda f: f % 2 == 1),
          "gt2": ("more than 2", lambda f: f > 2), "lt5": ("less than 5", lambda f: f < 5)}
_EVENT = {"six": ("a 6", lambda f: f == 6), "gt3": ("bigger than 3", lambda f: f > 3),
          "prime": ("a prime number", lambda f: f in (2, 3, 5)), "one": ("a 1", lambda f: f == 1)}


def _conditional(rng):
    if rng.random() < 0.5:
        while True:
            given, event = rng.choice(sorted(_GIVEN)), rng.choice(sorted(_EVENT))
            faces = [f for f in range(1, 7) if _GIVEN[given][1](f)]
            good = [f for f in faces if _EVENT[event][1](f)]
            if good:
                break
        q, t = _fill(rng, "cond_die", given=_GIVEN[given][0], event=_EVENT[event][0])
        value = Fraction(len(good), len(faces))
        return q, value, "probability", {"template": t, "mode": "die", "given": given, "event": event}
    a = rng.randint(4, 20)
    b = rng.randint(1, a - 1)
    t_ = a + rng.randint(5, 30)
    q, t = _fill(rng, "cond_group", t=t_, a=a, b=b)
    value = Fraction(b, a)
    q, form = _with_form(rng, q, value, chance=0.3)
    return q, value, form, {"template": t, "mode": "group", "total": t_, "a": a, "b": b}


_SPIN_COLOURS = ("red", "blue", "yellow", "green")


def _sectors_text(sectors: list[list]) -> str:
    parts = [f"a {c} sector of {deg} degrees" for c, deg in sectors]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _spinner(rng):
    k = rng.choice((2, 3, 3, 4))
    while True:
        cuts = sorted(rng.sample(range(1, 8), k - 1))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, 8])]
        if len(set(parts)) > 1:
            break
    colours = rng.sample(_SPIN_COLOURS, k)
    sectors = [[c, 45 * p] for c, p in zip(colours, parts)]
    target = rng.choice(colours)
    p = Fraction(dict((c, d) for c, d in sectors)[target], 360)
    if rng.random() < 0.7:
        q, t = _fill(rng, "spin_one", sectors=_sectors_text(sectors), c=target)
        spins, value = 1, p
    else:
        q, t = _fill(rng, "spin_two", sectors=_sectors_text(sectors), c=target)
        spins, value = 2, p * p
    q, form = _with_form(rng, q, value)
    return q, value, form, {"template": t, "sectors": sectors, "target": target, "spins": spins}


def _list_text(values: list[int]) -> str:
    return ", ".join(map(str, values[:-1])) + " and " + str(values[-1])


def _mean_median(rng):
    k = rng.randint(3, 6)
    if rng.random() < 0.5:
        values = [rng.randint(2, 20) for _ in range(k)]
        values[-1] += (-sum(values)) % k  # a whole-number mean
        q, t = _fill(rng, "mean", name=rng.choice(_NAMES), vals=_list_text(values), k=k)
        return q, Fraction(sum(values), k), "value", {"template": t, "stat": "mean", "values": values}
    k = rng.choice((3, 5, 5, 7, 4))
    values = [rng.randint(1, 30) for _ in range(k)]
    s = sorted(values)
    value = Fraction(s[k // 2]) if k % 2 else Fraction(s[k // 2 - 1] + s[k // 2], 2)
    q, t = _fill(rng, "median", vals=_list_text(values), k=k)
    return q, value, "value", {"template": t, "stat": "median", "values": values}


def _divisible(rng):
    mode = rng.choice(("one", "or", "or", "neither"))
    N = rng.choice((20, 30, 40, 50, 60, 100))
    a, b = sorted(rng.sample((2, 3, 4, 5, 6, 7), 2))
    if mode == "one":
        value = N // a
        b = None
    elif mode == "or":
        value = N // a + N // b - N // math.lcm(a, b)
    else:
        value = N - (N // a + N // b - N // math.lcm(a, b))
    q, t = _fill(rng, f"div_{mode}", N=N, a=a, b=b)
    return q, Fraction(value), "count", {"template": t, "mode": mode, "N": N, "a": a, "b": b}


def _rectangle(rng):
    mode = rng.choice(("area", "perimeter", "side"))
    w, l = rng.randint(2, 12), rng.randint(3, 20)
    if mode == "area":
        q, t = _fill(rng, "rect_area", w=w, l=l)
        value = w * l
    elif mode == "perimeter":
        q, t = _fill(rng, "rect_perimeter", w=w, l=l)
        value = 2 * (w + l)
    else:
        q, t = _fill(rng, "rect_side", area=w * l, w=w)
        value = l
    return q, Fraction(value), "value", {"template": t, "mode": mode, "w": w, "l": l}


#: kind -> (the training family it corresponds to, or "new:<kind>", its generator). Order = round-robin order.
KINDS: dict[str, tuple[str, object]] = {
    "arithmetic": ("arithmetic", _arithmetic),
    "shopping": ("word_problem", _shopping),
    "sharing": ("word_problem", _sharing),
    "fractions": ("fractions", _fractions),
    "percentages": ("percentages", _percentages),
    "dice": ("dice", _dice),
    "coin_sequences": ("coins", _coin_count),
    "coin_probability": ("coins", _coin_probability),
    "cards": ("cards", _cards),
    "urns": ("urns", _urns),
    "selections": ("combinations", _selections),
    "roles": ("permutations", _roles),
    "codes": ("permutations", _codes),
    "at_least_one": ("complement", _complement),
    "expected_value": ("expectation_variance", _expectation),
    "conditional": ("conditional_bayes", _conditional),
    "spinner": ("new:spinner", _spinner),
    "mean_median": ("new:mean_median", _mean_median),
    "divisibility": ("new:divisibility", _divisible),
    "rectangles": ("new:rectangles", _rectangle),
}


@lru_cache(maxsize=None)
def _build(seed: int, per_kind: int, exclude: tuple[str, ...] = ()) -> tuple[dict, ...]:
    """``per_kind`` records of every kind, round robin (kind order of ``KINDS``).

    No question near-duplicates (helpers.data's rule) an earlier one or one of ``exclude``.
    """
    rngs = {kind: random.Random(seed * 1000 + i) for i, kind in enumerate(KINDS)}
    seen = _QuestionIndex(exclude)
    for i, question in enumerate(exclude):
        seen.add(("excluded", i), question)
    out = []
    for _ in range(per_kind):
        for kind, (family, make) in KINDS.items():
            for _ in range(_MAX_TRIES):
                question, value, form, params = make(rngs[kind])
                if seen.find(question) is None:
                    break
            else:
                raise RuntimeError(f"transfer kind {kind!r}: no new question in {_MAX_TRIES} draws")
            seen.add(len(out), question)
            out.append({"question": question, "final_answer": format_final_answer(Fraction(value)),
                        "family": family, "kind": kind, "form": form, "source": f"transfer:{kind}",
                        "params": params})
    return tuple(out)


def transfer_set(n: int | None = None) -> list[dict]:
    """The fixed transfer evaluation set (320 questions, 16 of each of 20 kinds), or its first ``n``.

    The order is round robin over kinds, so any prefix is balanced (the fast
    preset takes a small ``n``). The same list on every call; the records are
    fresh copies. Never train on these (helpers.data.build_training_sets
    refuses them). Used in 03_sft_eval, 04_grpo_train, 05_compare.
    """
    records = _build(_TRANSFER_SEED, _TRANSFER_PER_KIND)
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: a non-negative int or None, got {n!r}")
        records = records[:n]
    return copy.deepcopy(list(records))


def retention_candidates() -> list[dict]:
    """A second fixed pool (300 questions, 15 per kind) of the same kinds, disjoint from ``transfer_set()``.

    Only for building the retention set: the questions the base model already
    answers right, which a trained model should still answer right. Never train
    on these either. Used in 03_sft_eval.
    """
    taken = tuple(r["question"] for r in _build(_TRANSFER_SEED, _TRANSFER_PER_KIND))
    return copy.deepcopy(list(_build(_RETENTION_SEED, _RETENTION_PER_KIND, taken)))
