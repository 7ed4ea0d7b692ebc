"""Optuna storages as nasco takes them: a string parsed and checked (:func:`check_storage`)
before anything is opened, with passwords masked (:func:`mask_url`) wherever it is shown.

The forms (the ``storage`` keyword of :class:`~nasco.search._optuna.OptunaSearcher`,
``--optuna-storage`` on the command line):

* a database URL (anything with ``://``: ``sqlite:///PATH.db``,
  ``postgresql://USER:PASSWORD@HOST/DB``, ``postgresql+psycopg2://...``,
  ``mysql+pymysql://...``): ``RDBStorage(url)``, with ``pool_pre_ping`` for a server
  database. Its driver must be installed (nasco brings none but SQLite's); a missing one is
  a ValueError that names the pip package;
* ``journal:PATH``, or a PATH ending in ``.journal`` or ``.log``: Optuna's journal file
  (``JournalStorage(JournalFileBackend(PATH))``).

A relative path (of a ``sqlite:///`` URL or a journal) is made absolute from the current
directory when the string is checked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

__all__ = ["STORAGE_FORMS", "Storage", "check_storage", "journal_file", "mask_url", "sqlite_file"]

# The pip package of each SQLAlchemy driver (dialect.driver) an Optuna storage may need.
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "pg8000": "pg8000",
    "pymysql": "PyMySQL", "mysqldb": "mysqlclient", "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb", "oracledb": "oracledb", "cx_oracle": "cx_Oracle", "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}
STORAGE_FORMS = ("a database URL (sqlite:///PATH.db, postgresql://USER:PASSWORD@HOST/DB, "
                 "mysql+pymysql://...), "
                  "journal:PATH, or a PATH ending in .journal or .log")
# A query parameter is a secret when its name holds one of these (password=, passphrase=,
# sslpassword=, ssl_key_passphrase=, secret=, token=, pwd=).
_SECRET_PARTS = ("pass", "pwd", "secret", "token")


def mask_url(url: str) -> str:
    """``url`` with its password and every secret query parameter (password=, passphrase=,
    token=, ...) shown as ``***``; anything that is not a URL (a journal path) as it is."""
    if "://" not in str(url):
        return str(url)
    from sqlalchemy.engine import make_url

    try:
        u = make_url(str(url))
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: mask what looks like user:password@
        import re

        text = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))
        return re.sub(r"([?&][^=&]*(?:pass|pwd|secret|token)[^=&]*=)[^&]*", r"\1***", text, flags=re.I)
    secret = {k: "***" for k in u.query if any(part in k.lower() for part in _SECRET_PARTS)}
    if secret:
        u = u.update_query_dict(secret)
    return u.render_as_string(hide_password=True)


@dataclass(frozen=True)
class Storage:
    """A parsed storage: an RDB URL (``url``) or a journal file; ``path`` is the file
    holding the study (None for a server database or an in-memory SQLite)."""

    url: str | None
    path: Path | None
    shown: str  # what logs and errors say (password masked)
    # SQLite without fsync (PRAGMA synchronous=OFF): for the run directory's own study, a
    # mirror of the fsynced ledger. Optuna commits ~27 times per trial; syncing each made a
    # 100-query table search 3x slower. A killed process loses nothing; a study lost with the
    # machine is rebuilt on resume, as the replay asks the same trials again.
    unsynced: bool = False

    def open(self) -> BaseStorage:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.url is None:
            return JournalStorage(JournalFileBackend(str(self.path)))
        # SQLite: wait for another run writing the same file rather than fail after pysqlite's
        # 5 s; a server database: check pooled connections before use (a long run outlives them).
        kwargs = ({"connect_args": {"timeout": 60}} if self.url.startswith("sqlite")
                  else {"pool_pre_ping": True})
        storage = RDBStorage(self.url, engine_kwargs=kwargs)
        if self.unsynced:
            import sqlalchemy

            def no_sync(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA synchronous=OFF")

            sqlalchemy.event.listen(storage.engine, "connect", no_sync)
            storage.engine.dispose()  # the connections made so far reconnect, with the pragma
        return storage


def journal_file(path: str, text: str) -> Storage:
    """The journal file ``path`` (absolute from the current directory); ``text`` is the
    storage string as given, for the error."""
    if not path.strip():
        raise ValueError(f"storage {text!r}: the journal needs a file path (journal:PATH)")
    p = Path(os.path.abspath(Path(path).expanduser()))
    return Storage(None, p, str(p))


def _rdb(url: str) -> Storage:
    from sqlalchemy.engine import make_url

    shown = mask_url(url)
    try:
        u = make_url(url)
    except Exception as exc:  # noqa: BLE001 - ArgumentError and the like: one line
        raise ValueError(f"storage {shown!r} is not a database URL SQLAlchemy can read "
                         f"({mask_url(str(exc))}); give "
                         f"{STORAGE_FORMS}") from None
    try:
        dialect = u.get_dialect()
    except Exception:  # noqa: BLE001 - NoSuchModuleError
        raise ValueError(f"storage {shown!r}: unknown database kind '{u.drivername}'; "
                         f"give {STORAGE_FORMS}") from None
    if getattr(dialect, "is_async", False):
        raise ValueError(f"storage {shown!r}: '{u.drivername}' is an asyncio driver, "
                         f"which Optuna cannot use; "
                         f"name a synchronous one (e.g. postgresql+psycopg2://)")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = getattr(dialect, "driver", "") or u.get_driver_name()
        package = _DRIVER_PACKAGES.get(driver.lower(), getattr(exc, "name", None) or driver)
        other = (" (or name psycopg2 in the URL, postgresql+psycopg2://..., and pip install psycopg2-binary)"
                 if u.get_backend_name() == "postgresql" and driver.lower() != "psycopg2" else "")
        raise ValueError(f"storage {shown}: SQLAlchemy cannot load the {u.get_backend_name()} "
                         f"driver '{driver}' "
                         f"({exc}); install it with: pip install '{package}'{other}") from None
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:" \
            and not u.database.startswith("file:"):
        return sqlite_file(Path(u.database), u)
    # Rendered again, the URL's parts are escaped (Optuna fills in '{...}' templates).
    return Storage(u.render_as_string(hide_password=False), None, shown)


def sqlite_file(path: Path, url: Any = None, *, unsynced: bool = False) -> Storage:
    """SQLite in the file ``path`` (absolute from the current directory), keeping the other
    parts (the driver, query options) of ``url``."""
    from sqlalchemy.engine import URL

    path = Path(os.path.abspath(path.expanduser()))
    u = (url if url is not None else URL.create("sqlite")).set(database=str(path))
    text = u.render_as_string(hide_password=False)  # escapes '?', '%', '{' of the path
    return Storage(text, path, mask_url(text), unsynced)


def check_storage(storage: str) -> Storage:
    """Parse an Optuna storage string (see the module docstring) without opening it.
    Raises ValueError (one line, no password) for anything else, or for a database whose
    driver is not installed."""
    if not isinstance(storage, str) or not storage.strip():
        raise ValueError(f"storage must be a non-empty string: {STORAGE_FORMS}; got {storage!r}")
    text = storage.strip()
    if text.startswith("journal:"):
        return journal_file(text[len("journal:"):], text)
    if "://" in text:
        return _rdb(text)
    if text.endswith((".journal", ".log")):
        return journal_file(text, text)
    raise ValueError(f"storage {text!r} is not understood; give {STORAGE_FORMS}")
