"""helpers: the logic behind the Math QA Workbook's notebooks.

One module per concern (config, models, runs, data, problems, answers, sft,
evaluate, rewards, grpo, plots, ui, check). Notebooks call these; the same
functions run from the command line (``python -m helpers check``,
``python -m helpers.sft``, ``python -m helpers.grpo``).
"""
