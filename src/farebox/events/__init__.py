"""In-process signals between areas and the due items the worker runs."""
