"""securechat: a TLS-secured IRC-compatible chat server and terminal client."""
