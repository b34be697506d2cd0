"""`securechat bench`: a load generator that measures an IRC server over TLS on loopback.

It never imports the server: it speaks plain IRC (NICK/USER, JOIN, PRIVMSG, PING/PONG, QUIT) so
the same scenarios run against securechat, ngircd or miniircd. The pure parts (statistics,
sequence tracking, /proc parsing, the fan-out plan) are separate modules so they can be unit
tested; the asyncio client and the multi-process coordinator sit on top of them.
"""
