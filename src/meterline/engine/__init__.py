"""The evaluator, the group-commit writer and (later) the scheduler."""
