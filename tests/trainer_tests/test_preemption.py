"""A process whose runs train off the main thread (a sweep's Ray trial worker) listens for
the whole process: SIGTERM is a notice while a run listens in any thread, and ends the
process as before while none does."""

from __future__ import annotations

import signal
import subprocess
import sys

SCRIPT = """
import os, signal, sys, threading
from trainer import preemption

preemption.listen_for_process()
heard = []

def run():
    with preemption.listening(pass_on=False) as listens:
        os.kill(os.getpid(), signal.SIGTERM)
        heard.append((listens, preemption.NOTICE.wait(5.0)))

thread = threading.Thread(target=run)
thread.start()
thread.join()
print(heard, flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # no run listens now: the process ends
threading.Event().wait(5.0)
print("still here", flush=True)
"""


def test_sigterm_is_a_notice_to_a_run_in_a_thread_and_ends_an_idle_process():
    ended = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert ended.stdout == "[(True, True)]\n", ended.stderr
    assert ended.returncode == -signal.SIGTERM
