"""Azure ML, the other place a sweep can run: the whole sweep as an Azure ML sweep job.

``runner`` submits, streams, fetches the best trial and registers it (``Sweep.run`` picks it
for ``compute: azure:CLUSTER``); ``job`` builds the job from one of our sweep files;
``job_file`` writes an Azure ML job file back as written; ``trial`` is what each trial runs
on Azure ML (``python -m sweep.azure.trial``). azure-ai-ml is imported in this package only.
"""
