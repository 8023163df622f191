"""Time: the system clock and the tenants' test clocks (`now_for`)."""
