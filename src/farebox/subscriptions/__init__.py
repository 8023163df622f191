"""Subscriptions and their lifecycle: the state machine, plan changes, trials, cancellation,
entitlements (docs/lifecycle.md)."""
