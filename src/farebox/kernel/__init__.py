"""The shared kernel of the pure core: money, periods, the clock port, reason codes, roles.

Like every `domain` layer of an area, nothing here does I/O, reads the clock or imports a framework;
time is always a parameter."""
