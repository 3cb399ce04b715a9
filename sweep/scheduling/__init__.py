"""What happens after each report: one verdict per report (``verdicts``: continue, stop
with a reason, pause at a rung, fail) from the stopping policies (Optuna's pruners, Azure
ML's rules, ASHA, the forecasting policy) and the pausing schedulers (promotion ASHA and
Hyperband, population-based training). A new policy is one module here and a table row.
"""
