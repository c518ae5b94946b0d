"""Servers only the tests and the benchmark use: Dovecot and a TCP proxy.

The pymap IMAP and aiosmtpd SMTP servers the demo also runs are in `mailflow.demo_servers`.
"""
