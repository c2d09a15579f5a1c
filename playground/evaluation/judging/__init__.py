"""Judging a batch's ``llm_judge`` assertions: the grader (one call per answer), the
cells it grades, and the final pass that runs it within the budget."""
