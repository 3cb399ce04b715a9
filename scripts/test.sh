#!/usr/bin/env bash
# Sets up and runs the whole test suite: lint, types, tests. The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the minutes go, on stderr: the setup's steps and the suite's are measured apart.
done_in() { echo "test.sh: $1 in ${SECONDS} s" >&2; SECONDS=0; }

# A fresh clone's virtual environment is kept outside the repo, one per Python and
# pyproject.toml (as Horovod's wheel and mypy's cache are): installing every dependency is
# ~100 s of a 2-CPU machine, re-pointing the editable install at this clone a few. A clone
# that has its own .venv keeps it (one linked here before is the cached one).
if [ ! -e .venv ] || [ -L .venv ]; then
  key=$( (python3 --version; cat pyproject.toml) | sha256sum | cut -c1-16)
  cached="$HOME/.cache/sweep/venv/$key"
  if [ ! -f "$cached/.complete" ]; then
    rm -rf "$cached"
    python3 -m venv "$cached"
    # Python 3.11's own pip (23.x) crashes resolving azure-ai-ml's OpenTelemetry pins beside
    # MLflow's (InconsistentCandidate); a current pip resolves them in seconds.
    "$cached/bin/pip" install -q --upgrade 'pip>=25'
    "$cached/bin/pip" install -q -e '.[dev,azure,postgres]'
    touch "$cached/.complete"  # a build cut short is not reused
  fi
  ln -sfn "$cached" .venv
else
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade 'pip>=25'
fi
# With everything installed this only re-points the editable install (and adds what a
# changed pyproject.toml asks for, in a venv of this clone's own).
.venv/bin/pip install -q -e '.[dev,azure,postgres]'

# The HTML report is checked in a real headless browser: Debian's Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; the browser test of the HTML report will be skipped" >&2
  fi
fi

# Shared studies are tested on a real PostgreSQL server: Debian's, started by the tests.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "note: PostgreSQL's server is not installed; the shared-study tests will be skipped" >&2
  fi
fi

# Horovod's last release needs patches to build against torch 2.14: built once, cached.
bash scripts/build_horovod.sh
done_in "virtual environment, packages and Horovod"

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# mypy's cache outside the repo: a fresh clone re-checks in seconds (it compares file hashes
# when the times differ) instead of half a minute.
.venv/bin/mypy --cache-dir "$HOME/.cache/sweep/mypy"
done_in "ruff and mypy"
# Two or more test processes (up to 4), a module to each at a time: the longest modules go
# first (tests/conftest.py, by tests/module_seconds.json), so neither waits long for the
# other at the end; xdist would otherwise reorder them by their number of tests.
workers=$(( $(nproc) < 4 ? $(nproc) : 4 ))
exec .venv/bin/pytest -n "$(( workers < 2 ? 2 : workers ))" --dist loadfile --no-loadscope-reorder "$@"
