"""Pure rules of the domain: synchronous, stdlib only, no clock, no I/O."""
