"""Invoices, credit notes and credits, billing details, the billing run, PDFs (docs/invoicing.md)."""
