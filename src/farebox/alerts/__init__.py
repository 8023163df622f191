"""Usage and billing alerts, in-app notifications, e-mail and webhook delivery (docs/alerts.md)."""
