"""Payment methods, charging invoices after the commit, dunning; providers in `providers/`."""
