"""The ASGI app for `farebox serve` (uvicorn imports it by path)."""

import gc

from farebox.entrypoints.api.app import create_app

app = create_app()

# What exists by now (modules, tables, routes, schemas: ~160,000 objects) lives as long as the process.
# Frozen, it is left out of the collector's full passes, which otherwise walk all of it with every
# request waiting (~100 ms each, measured: docs/performance.md), and set the p99 of the API.
gc.collect()
gc.freeze()
