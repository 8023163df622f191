"""Alert kinds, thresholds and their wording (pure)."""
