"""The `mailflow` command line: one module per command group, dispatched from `main`."""
