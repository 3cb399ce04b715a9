"""Which Python package a database ``storage:`` URL needs, checked before anything runs.

SQLAlchemy picks a driver by the URL's scheme (``postgresql://`` is psycopg 3 in
SQLAlchemy 2.1; ``postgresql+psycopg2://`` names another); without it Optuna fails with
"Failed to import DB access module". A missing driver is one sentence naming the extra.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from sweep.errors import SweepInputError

# scheme (dialect[+driver]) -> (module to import, how to install it)
DRIVERS: dict[str, tuple[str, str]] = {
    "postgresql": ("psycopg", "pip install -e '.[postgres]'"),
    "postgresql+psycopg": ("psycopg", "pip install -e '.[postgres]'"),
    "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "mysql": ("MySQLdb", "pip install mysqlclient"),
    "mysql+pymysql": ("pymysql", "pip install pymysql"),
    "sqlite": ("sqlite3", "a Python built with sqlite3"),
}


def check_driver(url: str) -> None:
    """Refuses a URL whose database driver is not installed, naming what to install."""
    if url == "default":
        return
    scheme = urlsplit(url).scheme.lower()
    module, install = DRIVERS.get(scheme, (None, ""))
    if module is None:
        return  # a dialect we do not know: SQLAlchemy says what it misses
    try:
        importlib.import_module(module)
    except ImportError:
        raise SweepInputError(
            f"storage: a {scheme}:// URL needs the {module} driver, which is not installed "
            f"({install})"
        ) from None
