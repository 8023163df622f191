"""Repositories: every query lives here, one module per area.  Each function
takes the unit of work's connection; none of them commits."""
