"""Read models shared by the digest, the reports and the web console: typed results, aggregates in SQL."""
