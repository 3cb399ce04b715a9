"""What a trial runs, and how it runs in its worker: the kinds of trial (a Python function,
the built-in trainer, a command with MLflow metrics; ``trial_kinds``), the runner that calls
a trainer with its ``report`` and captures its log, and the checks that a trainer can run
at all. The same code runs in a local worker, on a Ray cluster's node and in-process.
"""
