"""The service layer: use cases.  Each opens a unit of work, loads, calls the
pure domain, writes and commits.  The API, the portal, the CLI and the worker
all call these same functions."""
