"""All tables, one module per area, on one MetaData.

Rule for every table that holds a tenant's data: `tenant_id` is the first
column of its primary key (and of every unique key), so the schema can be
distributed by tenant (see docs/architecture.md).  Global tables: catalogs,
plan versions, test clocks and API keys (a key is looked up before its
tenant is known).
"""

from farebox.storage.tables import alerts, audit, core, invoicing, metering, payments, portal, subscriptions  # noqa: F401  (registers tables)
from farebox.storage.tables.base import metadata

__all__ = ["metadata"]
