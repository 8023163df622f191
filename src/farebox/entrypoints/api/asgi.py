"""The ASGI app for `farebox serve` (uvicorn imports it by path)."""

from farebox.entrypoints.api.app import create_app

app = create_app()
