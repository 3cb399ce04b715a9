"""Running a sweep: the coordinator's loop (ask, start, hear reports, answer, end), the one
owner of a trial's ending (``endings``), interruptions and take-overs, the study opened with
its sampler and policy, the checks made before anything runs, and the listener that hears
progress. Where a trial runs is the backends' (``sweep.backends``); what it runs is the
trainers' (``sweep.trainers``).
"""
