"""Browsers: an HTTPS listener that serves the bundled web app and IRC over WebSocket.

``http`` parses request heads, ``site`` decides what to answer and whom to let in,
``connection`` turns one connection into HTTP responses or a WebSocket core session,
``listener`` opens the port. Nothing here is imported unless ``web_port`` is set, so the
IRC path pays nothing for it.
"""
