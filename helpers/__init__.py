"""helpers: the logic behind the Math QA Workbook's notebooks.

One module per concern: config (presets), models, runs (run folders, atomic
writes, file hashes), data, problems and transfer (generated and held-out
questions), answers, training (what every trainer shares: run folder, resume, dry
run, OOM retry, NaN guard, final_model/), callbacks, checkpoints, faults, memory
(CPU memory savers), distributed (``accelerate launch``), gpu_memory (estimates),
sft, grpo and grpo_trainer, rejection_sft, headroom, rewards, evaluate, compare,
export, rag, plots, ui, check, notebooks. Notebooks call these; the same
functions run from the command line (``python -m helpers check``,
``python -m helpers.sft``, ``python -m helpers.grpo``).
"""

import warnings as _warnings

# The one place the workbook silences library warnings, each named with why:
# - transformers 5.x deprecates `PreTrainedModel.is_gradient_checkpointing` (FutureWarning, "removed in v6"); TRL 1.16
#   and PEFT 0.21 still read it inside Trainer and get_peft_model, so every training step of a notebook would print it
#   to stderr although nothing the learner wrote uses it.
_warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
