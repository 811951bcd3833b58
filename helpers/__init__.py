"""helpers: the logic behind the Math QA Workbook's notebooks.

One module per concern: config (presets), models, runs (run folders), data,
problems and transfer (generated and held-out questions), answers, training (what
every trainer shares: run folder, resume, dry run, OOM retry, NaN guard,
final_model/), callbacks, checkpoints, faults, sft, grpo and grpo_trainer, rewards,
evaluate, compare, rag, plots, ui, check, notebooks. Notebooks call these; the same
functions run from the command line (``python -m helpers check``,
``python -m helpers.sft``, ``python -m helpers.grpo``).
"""
