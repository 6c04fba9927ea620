"""Pure rules of meterline: no I/O, no imports from other layers."""
