"""Tenants, members, API keys, portal sign-in and the operator's tenant overview."""
