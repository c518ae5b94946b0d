"""What the mailbox sources and mail transports share: errors, TLS, OAuth2 tokens, the Exchange
account and the Graph client. `sources/` and `transports/` import from here, never from each other."""
