"""What a sweep keeps, and where: the folder layout (``layout``), the study's storage (the
journal file, a database, several coordinators sharing one), each trial's attributes in the
study (``trial_attrs``, the one owner of their keys), its folder's records and checkpoints,
the trials table the reports read, what ``keep`` leaves on disk, the budget as every path
counts it, the capped trial log, and the copy kept in MLflow (``tracking``). Nothing here
decides or runs anything: the other groups read and write through it.
"""
