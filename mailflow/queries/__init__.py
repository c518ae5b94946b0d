"""Read models shared by the command line and the web console: aggregates computed in SQL."""
