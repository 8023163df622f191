"""Storage shared by every area: engines, the unit of work, hot statements on the driver's cursor, ids,
column types, migrations, the schema (`tables/`) and the SQL repositories of the ports."""
