"""Browsers: an HTTPS listener that serves the bundled web app and IRC over WebSocket.

``http`` parses request heads, ``site`` decides what to answer and whom to let in,
``connection`` turns one connection into HTTP responses or a WebSocket core session,
``listener`` opens the port. This package is part of the I/O shell and sits above
``server.net`` (a ``WebConnection`` is a ``net.Connection``), so the server never imports it:
``securechat serve`` hands ``listener.start_web`` to ``ChatServer``, which calls it only when
``web_port`` is set (tests/unit/test_layering.py).
"""
