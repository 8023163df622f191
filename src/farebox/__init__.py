"""farebox: billing, metering and admission control for attendance- and session-priced products."""

__version__ = "0.1.0"
