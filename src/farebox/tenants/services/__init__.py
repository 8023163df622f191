"""Tenant use cases: tenants, members and keys, portal sign-in, the operator overview."""
