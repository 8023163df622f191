"""Alert listeners, the delivery pass, notifications and webhook endpoints."""
