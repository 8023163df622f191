"""Issuing, listing, voiding invoices; credits; billing details; the billing run."""
