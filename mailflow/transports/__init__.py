"""Mail transports: how outgoing mail leaves (file, SMTP, EWS, Graph)."""
