"""What should be billed, recomputation, totals, billing details (pure)."""
