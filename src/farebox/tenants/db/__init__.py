"""Tenant queries; none commits."""
