"""Presentation helpers of the operator console: usage in one line."""

from __future__ import annotations

from farebox.metering.services.usage import UsageSummary


def usage_line(summary: UsageSummary) -> str:
    """e.g. "sessions 8 / 600" for period pools; occurrence caps are per event, not shown."""
    parts = [
        f"{m.meter} {m.used:,}" + (f" / {m.limit:,}" if m.limit is not None else "")
        for m in summary.meters
        if m.scope == "period"
    ]
    return ", ".join(parts) or "—"
