"""Mailbox sources: where inbound mail is read from (Maildir, IMAP, EWS, Graph)."""
