"""The SQL adapter: SQLAlchemy Core tables, Alembic migrations, SQLite and PostgreSQL.

``SqlAccounts`` and ``SqlLedger`` implement :class:`meterline.ports.Accounts` and
:class:`meterline.ports.Ledger`; money at rest is integer nano-dollars.
"""

from meterline.adapters.db.accounts import SqlAccounts
from meterline.adapters.db.engine import create_engine
from meterline.adapters.db.invoices import SqlInvoices
from meterline.adapters.db.ledger import SqlLedger
from meterline.adapters.db.migrate import migrate
from meterline.adapters.db.repricing import SqlRepricer
from meterline.adapters.db.urls import to_async_url

__all__ = [
    "SqlAccounts",
    "SqlInvoices",
    "SqlLedger",
    "SqlRepricer",
    "create_engine",
    "migrate",
    "to_async_url",
]
