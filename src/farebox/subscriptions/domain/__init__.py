"""The subscription lifecycle in the pure core: the state machine (`machine`),
plan changes (`plan_changes`) and the G11 cards (`cards`).  See docs/lifecycle.md."""
