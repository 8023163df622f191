"""The pure core: rules, state machines, money and periods.

Nothing in this package does I/O, reads the clock or imports a framework;
time is always a parameter.
"""
