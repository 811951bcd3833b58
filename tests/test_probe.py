"""The reward stage's probe checkpoints: scored at the start, every N steps and at the end; final_model/ is the best."""

import json

import pytest
import torch

from helpers import callbacks, config, grpo
from helpers.training import RunSetupError

ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
         "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 5) for b in range(1, 5)]


def _state(step):
    import types

    return types.SimpleNamespace(global_step=step)


def test_the_best_probe_is_restored_and_ties_go_to_the_later_step(monkeypatch):
    """Probe scores 1/2, 2/2, 2/2, 0/2 at steps 0-3: the best is step 2 (a tie with 1 goes to the later step), and
    restore_best puts step 2's weights back."""
    import helpers.evaluate as evaluate

    scores = iter([1, 0, 1, 1, 1, 1, 0, 0])  # two questions per probe
    monkeypatch.setattr(evaluate, "generate", lambda model, tok, questions, settings, progress=False:
                        [[{"text": "Answer: 1", "tokens": 3, "truncated": False}] for _ in questions])
    monkeypatch.setattr(evaluate, "score_numeric", lambda text, reference, strict=True: bool(next(scores)))
    tokenizer = type("Tok", (), {"padding_side": "right"})()
    model = torch.nn.Linear(2, 2)
    probe = callbacks.ProbeCheckpoints([{"question": "q1", "final_answer": "1"}, {"question": "q2", "final_answer": "2"}],
                                       tokenizer, every=1)
    probe.on_train_begin(None, _state(0), None, model=model)
    weights = {}
    for step in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(float(step))
        weights[step] = model.weight.detach().clone()
        probe.on_step_end(None, _state(step), None, model=model)
    probe.on_train_end(None, _state(3), None, model=model)  # step 3 was probed: no second probe
    assert [h["step"] for h in probe.history] == [0, 1, 2, 3]
    assert [h["right"] for h in probe.history] == [1, 2, 2, 0]
    probe.restore_best(model)
    assert probe.best_step == 2 and probe.restored and torch.equal(model.weight, weights[2])
    record = probe.record()
    assert record["best_step"] == 2 and record["last_step"] == 3 and "step 2, the best probe" in record["final_model"]
    assert tokenizer.padding_side == "right"  # generation's left padding does not leak into training


def test_a_flat_probe_keeps_the_last_step(monkeypatch):
    import helpers.evaluate as evaluate

    monkeypatch.setattr(evaluate, "generate", lambda model, tok, questions, settings, progress=False:
                        [[{"text": "x", "tokens": 1, "truncated": False}] for _ in questions])
    monkeypatch.setattr(evaluate, "score_numeric", lambda text, reference, strict=True: False)
    model = torch.nn.Linear(2, 2)
    probe = callbacks.ProbeCheckpoints([{"question": "q", "final_answer": "1"}],
                                       type("Tok", (), {"padding_side": "left"})(), every=2)
    probe.on_train_begin(None, _state(0), None, model=model)
    for step in (1, 2, 3):
        probe.on_step_end(None, _state(step), None, model=model)
    probe.on_train_end(None, _state(3), None, model=model)  # 3 is not a multiple of 2: probed at the end
    before = model.weight.detach().clone()
    probe.restore_best(model)
    assert [h["step"] for h in probe.history] == [0, 2, 3] and probe.best_step == 3 and not probe.restored
    assert torch.equal(model.weight, before) and "the last step, 3" in probe.record()["final_model"]


def _settings(model_dir, probe_data, **kw):
    base = dict(model_name=str(model_dir), max_steps=3, batch_size=4, num_generations=4, max_new_tokens=8,
                lr=5e-2, logging_steps=1, save_steps=3, warmup_ratio=0.0, mask_truncated_completions=False,
                max_train_examples=0, probe_every=2, probe_size=3, probe_max_new_tokens=6, probe_data=str(probe_data))
    base.update(kw)
    return config.resolve("fast_test", "grpo", device=config.DeviceInfo(), **base)


def test_a_grpo_run_probes_and_records_it_in_run_json(tiny_model_dir, tmp_path, workbook_output):
    train, probe = tmp_path / "train.json", tmp_path / "probe.json"
    train.write_text(json.dumps(ROWS))
    probe.write_text(json.dumps(ROWS[:5] + [{"question": "What is a die?", "answer": "A cube."}]))
    result = grpo.train_grpo(_settings(tiny_model_dir, probe), train)
    record = json.loads((result.run.root / "run.json").read_text())
    assert result.status == "completed" and (result.run.root / "final_model" / "adapter_model.safetensors").is_file()
    assert [h["step"] for h in record["probe"]["history"]] == [0, 2, 3]  # start, every 2 steps, the end
    assert record["probe"]["n"] == 3 and all(h["n"] == 3 for h in record["probe"]["history"])
    assert record["probe"]["best_step"] in (0, 2, 3)
    assert "final_model/ is the best" in result.plan["probe"]


@pytest.mark.parametrize("content, words", [(None, "does not exist"),
                                            ("[{\"question\": \"What is a die?\", \"answer\": \"A cube.\"}]",
                                             "no valid row with a final_answer")])
def test_a_bad_probe_file_fails_before_anything_is_written(tiny_model_dir, tmp_path, workbook_output, content, words):
    train, probe = tmp_path / "train.json", tmp_path / "probe.json"
    train.write_text(json.dumps(ROWS))
    if content is not None:
        probe.write_text(content)
    with pytest.raises(RunSetupError, match=f"probe_data: .*{words}"):
        grpo.train_grpo(_settings(tiny_model_dir, probe), train)
    assert list(workbook_output.iterdir()) == []


def test_the_probe_plot_marks_the_step_final_model_holds():
    import matplotlib.pyplot as plt

    from helpers.plots import plot_probe

    probe = {"n": 100, "best_step": 20, "history": [{"step": 0, "accuracy": 0.30}, {"step": 20, "accuracy": 0.34},
                                                    {"step": 40, "accuracy": 0.31}]}
    fig = plot_probe(probe)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["final_model/: step 20"]
    assert list(ax.lines[1].get_xdata()) == [20] and list(ax.lines[1].get_ydata()) == [0.34]
    assert not plt.get_fignums()  # returned, not left open in pyplot (it would be drawn twice)
