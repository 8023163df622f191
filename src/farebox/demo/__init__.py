"""The demo data of `make run` and the narrated `farebox demo`."""
