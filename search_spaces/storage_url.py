"""A study storage URL as written in a sweep file: checked, expanded, and kept out of messages.

Secrets in a URL come from the environment (``${PGPASSWORD}``) and are expanded only when the
storage is opened, so the URL as written (what sweep.yaml keeps, what messages show) never
holds them; a password written into the file itself is refused.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from search_spaces._errors import SearchSpaceError, abbreviate
from search_spaces.env_vars import VAR as _VAR

# Query keys that carry credentials in the database drivers' URLs.
_SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "secret", "token", "access_token", "api_key", "key", "sig", "sas"}
)


def check_storage(value: Any) -> str:
    """``default`` or a database URL whose credentials, if any, are ``${VAR}`` references."""
    if not isinstance(value, str) or not (value == "default" or "://" in value):
        shown = abbreviate(value) if not isinstance(value, str) or "://" not in value else "it"
        raise SearchSpaceError(
            "storage", f"{shown} must be 'default' or a database URL such as postgresql://…"
        )
    if value == "default":
        return value
    _check_form(value)
    password = _userinfo(value).partition(":")[2]
    literal = [password] if password and not _VAR.fullmatch(password) else []
    literal += [
        v
        for k, v in parse_qsl(_query(value))
        if k.lower() in _SECRET_KEYS and v and not _VAR.fullmatch(v)
    ]
    if literal:
        raise SearchSpaceError(
            "storage",
            "holds a password in the file (it would be copied into sweep.yaml); "
            "put it in an environment variable and write ${NAME} in its place, e.g. "
            "postgresql://user:${PGPASSWORD}@host/db",
        )
    return value


# SQLAlchemy's dialects that Optuna's RDB storage runs on ('+driver' may follow).
DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite", "oracle", "mssql")


def _check_form(url: str) -> None:
    """A URL SQLAlchemy can parse, of a database dialect (not a file, cache or journal)."""
    scheme = url.partition("://")[0]
    if scheme.split("+")[0].lower() not in DIALECTS:
        raise SearchSpaceError(
            "storage",
            f"{scheme[:40]}:// is not a database Optuna can keep a study in; "
            f"expected default (a journal file in the sweep's folder) or a URL of "
            f"{', '.join(d + '://' for d in DIALECTS[:3])} or sqlite:///PATH",
        )
    try:
        parts = urlsplit(_VAR.sub("x", url))
        parts.port  # noqa: B018 - it parses the port, and raises on a bad one
    except ValueError as exc:
        raise SearchSpaceError("storage", f"is not a valid URL: {exc}") from None
    if (
        scheme.startswith("sqlite")
        and url.partition("://")[2] not in ("", "/")
        and not url.partition("://")[2].startswith("/")
    ):
        raise SearchSpaceError(
            "storage",
            "a sqlite URL is sqlite:///PATH (three slashes: "
            "relative to the sweep file) or sqlite:////ABSOLUTE/PATH",
        )


def expand(url: str) -> str:
    """The URL with its ``${VAR}`` references filled in from the environment; a value in the
    user-info part is percent-encoded, so a password may hold ``@ : / %``."""
    userinfo = _userinfo(url)
    if not userinfo:
        return _fill(url, quoted=False)
    scheme, _, rest = url.partition("://")
    filled_info = _fill(userinfo, quoted=True)
    return f"{scheme}://{filled_info}@{_fill(rest[len(userinfo) + 1 :], quoted=False)}"


def scrub(text: str, url: str) -> str:
    """``text`` with every secret of ``url`` (each expanded ``${VAR}``, in every encoding a
    driver may echo) replaced by ``***``."""
    secrets = set()
    for match in _VAR.finditer(url):
        value = os.environ.get(match.group(1) or match.group(2), "")
        if len(value) >= 3:  # a 1-2 character value would blank out ordinary text
            secrets |= _forms(value)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _forms(value: str) -> set[str]:
    """The ways a driver may echo a secret: as it is, percent-encoded, and escaped and quoted
    as Python's repr, JSON and a C-style string write it (``'x"y\\z\\'q'``)."""
    import json

    forms = {value, quote(value, safe=""), quote_plus(value)}
    for form in list(forms):
        for written in (repr(form), json.dumps(form)):
            forms.add(written)
            forms.add(written[1:-1])  # the same escapes without the quotes
        forms.add(form.replace("\\", "\\\\").replace("'", "\\'"))
        forms.add(form.replace("\\", "\\\\").replace('"', '\\"'))
    return {f for f in forms if f}


def _fill(text: str, *, quoted: bool) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        found = os.environ.get(name)
        if found is None:
            raise SearchSpaceError("storage", f"uses ${{{name}}}, which is not set")
        return quote(found, safe="") if quoted else found

    return _VAR.sub(value, text)


def _userinfo(url: str) -> str:
    # Split by hand: urlsplit would parse an unexpanded ${VAR} differently from its value.
    rest = url.partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return authority.rpartition("@")[0]


def _query(url: str) -> str:
    return urlsplit(url).query
