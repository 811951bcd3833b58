"""Two processes through `accelerate launch` on the CPU (gloo): SFT and GRPO on the tiny model.

What holds, and is asserted: both processes trained (each one's own row count in run.json), their adapters
were equal after every step, there is exactly one run folder with one final_model/, the plan reports the
effective batch as per-device x processes x accumulation, and a resume under the same launch ends exactly where
the uninterrupted launch ended.

SFT with the same effective batch and data order in one process (batch 2 x 2 processes = batch 2 x
accumulation 2) gives the same adapter up to float32 rounding (largest difference measured 2026-12-02: 0 on one
2-core AMD EPYC machine, 1.8e-07 on another of the same kind; a LoRA update at lr 1e-3 moves weights by ~1e-3,
so 1e-06 separates rounding from a real difference). The same rows meet the same weights in the same order; the one process adds the two micro-batches' gradients g0 + g1, and
under DDP each process scales its loss by the process count (transformers divides by the token count of both
processes) and gloo averages (2 g0 + 2 g1) / 2, which is the same sum: scaling by 2 is exact in binary, but the order in which gloo and the matmul kernels add
partial sums is theirs, hence rounding.

GRPO cannot be compared with one process: sampling draws from each process's own random stream (the two
processes start from the same seed and each samples half of the groups), so the completions, the rewards and
hence the update differ from one process sampling all groups from one stream. What holds instead: each
process's prompts come in whole groups of ``num_generations``, the two processes' prompts differ, and
together they are exactly the prompts one process with the whole batch trains on in the same step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Largest absolute difference allowed between the 2-process and the 1-process SFT adapter: rounding (see above).
SFT_TOL = 1e-6

ROWS = [{"question": f"What is {a} + {b}?", "answer": f"{a} + {b} = {a + b}.\nAnswer: {a + b}",
         "final_answer": str(a + b), "family": "arithmetic"} for a in range(1, 7) for b in range(1, 5)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import build_tiny_model

    root = tmp_path_factory.mktemp("distributed")
    model = build_tiny_model(root / "tiny")
    data = root / "train.json"
    data.write_text(json.dumps(ROWS))
    return root, model, data


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(module: str, args: list[str], output: Path, timeout: int = 240) -> subprocess.CompletedProcess:
    """Two gloo processes through accelerate's multi-process launcher (torch.distributed.run), one thread each.

    ``accelerate launch --cpu --num_processes 2`` would start one process: accelerate 1.15 starts several
    CPU processes only through mpirun (huggingface/accelerate#2741), which these machines do not have.
    ``--multi_gpu`` takes the launcher it uses for GPUs, and on a machine without one the processes train
    on the CPU with gloo (the presets' ``use_cpu``), as ``torchrun --nproc_per_node 2`` would.
    """
    env = {**os.environ, "WORKBOOK_OUTPUT": str(output), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "ACCELERATE_USE_CPU": "true"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", module, *args]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


def adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def only_run(output: Path, stage: str) -> Path:
    runs = [p for p in output.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [p.name.split("_")[0] for p in runs] == [stage], f"expected exactly one {stage} run folder: {runs}"
    assert len(list(runs[0].glob("final_model"))) == 1 and not list(runs[0].glob(".final_model*"))
    return runs[0]


SFT_FLAGS = ["--config", "fast_test", "--max-steps", "4", "--batch-size", "2", "--grad-accum", "1", "--save-steps", "2",
             "--lr", "5e-3", "--lora-dropout", "0", "--group-by-length", "false", "--max-train-examples", "0",
             "--logging-steps", "1", "--warmup-ratio", "0", "--lr-scheduler", "constant", "--eval-steps", "100",
             "--bf16-autocast", "false"]  # float32 on every CPU: these runs are compared to 1e-6


@pytest.mark.slow
def test_sft_two_processes_one_run_same_adapter_as_one_process_and_exact_resume(setup, tmp_path, monkeypatch):
    root, model, data = setup
    output = tmp_path / "output"
    output.mkdir()
    flags = [*SFT_FLAGS, "--model-name", str(model), "--train-data", str(data)]
    done = launch("helpers.sft", flags, output)
    run = only_run(output, "sft")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 4
    assert record["plan"]["effective_batch"] == 4 and record["plan"]["batch"] == "2 per device x 2 processes x 1"
    assert done.stdout.count('"status": "completed"') == 1, "only the main process prints the result"
    processes = record["processes"]
    assert [p["rank"] for p in processes] == [0, 1]
    assert [p["rows"] for p in processes] == [8, 8], "each process trains 2 rows per step for 4 steps"
    assert all(len(p["adapter_fingerprints"]) == 4 for p in processes)
    assert processes[0]["adapter_fingerprints"] == processes[1]["adapter_fingerprints"], "the copies drifted apart"
    assert record["replicas_in_sync"] is True
    steps = [int(line.split("\t")[0]) for line in (run / "training_log.txt").read_text().splitlines()[1:]
             if line and not line.startswith("#") and line.split("\t")[1]]
    assert steps == [1, 2, 3, 4], "one log row per step, written once"
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (run / "checkpoint-2" / "rng_state_1.pth").is_file(), "each process's random state is checkpointed"

    # One process, the same effective batch and data order: batch 2 x accumulation 2.
    monkeypatch.setenv("WORKBOOK_OUTPUT", str(tmp_path))
    from helpers import config, sft

    overrides = dict(max_steps=4, batch_size=2, grad_accum=2, save_steps=100, lr=5e-3, lora_dropout=0.0,
                     group_by_length=False, max_train_examples=0, logging_steps=1, warmup_ratio=0.0,
                     lr_scheduler="constant", eval_steps=100, model_name=str(model), bf16_autocast=False)
    single = sft.train_sft(config.resolve("fast_test", "sft", device=config.DeviceInfo(), **overrides), data,
                           output_dir=tmp_path / "single")
    diff = max_diff(adapter(single.final_model), adapter(run / "final_model"))
    print(f"SFT 2 processes vs 1: max adapter difference {diff:.3g}")
    assert diff <= SFT_TOL

    # Resume under the same launch from checkpoint-2 of a copy: it must end where the uninterrupted run ended.
    resumed = output / "sft_resumed"
    shutil.copytree(run, resumed, ignore=shutil.ignore_patterns("checkpoint-4", "final_model"))
    launch("helpers.sft", [*flags, "--output-dir", str(resumed), "--resume", "latest"], output)
    again = json.loads((resumed / "run.json").read_text())
    assert again["status"] == "completed" and again["resumed_from"].endswith("checkpoint-2")
    assert max_diff(adapter(resumed / "final_model"), adapter(run / "final_model")) == 0.0
    assert again["processes"][0]["adapter_fingerprints"] == processes[0]["adapter_fingerprints"][2:]


GRPO_ROWS = ROWS[:16] + [{"question": f"What is a sample space ({i})?", "topic": "sample_spaces_events",
                          "answer": "The set of all possible outcomes of an experiment."} for i in range(8)]
GRPO_FLAGS = ["--config", "fast_test", "--max-steps", "2", "--batch-size", "4", "--num-samples", "4",
              "--max-new-tokens", "8", "--save-steps", "2", "--lr", "5e-2", "--lora-dropout", "0",
              "--max-train-examples", "0", "--warmup-ratio", "0", "--kl-coef", "0.05", "--logging-steps", "1",
              "--mask-truncated-completions", "false", "--reward-weights", "correctness=1,format=0.5,similarity=1"]


@pytest.mark.slow
def test_grpo_two_processes_sample_whole_groups_of_different_prompts(setup, tmp_path, monkeypatch):
    root, model, _ = setup
    data = tmp_path / "grpo.json"
    data.write_text(json.dumps(GRPO_ROWS))
    output = tmp_path / "output"
    output.mkdir()
    launch("helpers.grpo", [*GRPO_FLAGS, "--model-name", str(model), "--train-data", str(data)], output)
    run = only_run(output, "grpo")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["global_step"] == 2
    plan = record["plan"]
    assert (plan["prompts_per_step"], plan["samples_per_step"]) == (2, 8) and plan["generation"] == "generate"
    assert plan["batch"] == "4 per device x 2 processes x 1"
    processes = record["processes"]
    assert [p["rows"] for p in processes] == [8, 8], "each process samples 4 completions per step for 2 steps"
    assert processes[0]["adapter_fingerprints"] == processes[1]["adapter_fingerprints"] and record["replicas_in_sync"]
    for step in range(2):
        groups = [p["prompts"][step] for p in processes]  # [[prompt id, samples in a row], ...]
        assert [[n for _, n in g] for g in groups] == [[4], [4]], "one whole group of 4 per process"
        assert groups[0][0][0] != groups[1][0][0], "both processes sampled the same prompt"

    # One process with the whole batch (8 samples) trains on the same two prompts in each step.
    monkeypatch.setenv("WORKBOOK_OUTPUT", str(tmp_path))
    from helpers import config, grpo
    from helpers.distributed import ProcessRecord

    overrides = dict(max_steps=2, batch_size=8, num_generations=4, max_new_tokens=8, save_steps=100, lr=5e-2,
                     lora_dropout=0.0, max_train_examples=0, warmup_ratio=0.0, beta=0.05, logging_steps=1,
                     mask_truncated_completions=False, model_name=str(model),
                     reward_weights={"correctness": 1.0, "format": 0.5, "similarity": 1.0})
    seen = []
    original = ProcessRecord.as_dict
    monkeypatch.setattr(ProcessRecord, "as_dict", lambda self: seen.append(original(self)) or seen[-1])
    grpo.train_grpo(config.resolve("fast_test", "grpo", device=config.DeviceInfo(), **overrides), data,
                    output_dir=tmp_path / "single")
    single = seen[-1]["prompts"]
    for step in range(2):
        assert single[step] == processes[0]["prompts"][step] + processes[1]["prompts"][step]


def test_trls_repeat_sampler_gives_each_process_whole_groups_of_its_own_prompts():
    """What the workbook relies on, checked on the libraries themselves: TRL's RepeatSampler repeats each prompt
    num_generations times in a row, and accelerate's BatchSamplerShard hands each process whole per-device
    batches in turn; with a per-device batch that is a multiple of num_generations, no group is split."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler
    from trl.trainer.utils import RepeatSampler

    group, per_device, processes = 4, 8, 2

    def sampler():  # each process builds its own, with the same seed (the Trainer's args.seed)
        return RepeatSampler(list(range(20)), mini_repeat_count=group, batch_size=per_device * processes // group,
                             repeat_count=1, shuffle=True, seed=42)

    shards = [list(BatchSamplerShard(BatchSampler(sampler(), per_device, drop_last=False), processes, rank))
              for rank in range(processes)]
    for step in range(len(shards[0])):
        prompts = []
        for rank in range(processes):
            batch = shards[rank][step]
            groups = [batch[i:i + group] for i in range(0, len(batch), group)]
            assert all(len(set(g)) == 1 and len(g) == group for g in groups), f"rank {rank} split a group: {batch}"
            prompts.append({g[0] for g in groups})
        assert not prompts[0] & prompts[1], "two processes sampled the same prompt in one step"
