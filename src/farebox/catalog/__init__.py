"""Catalogs, plans, meters, limits and prices (rules in `domain`, YAML in `files`, queries in `db`)."""
