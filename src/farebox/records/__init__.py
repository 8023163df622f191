"""The audit log, the tenant data export and the retention sweep."""
