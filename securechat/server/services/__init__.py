"""Services: NickServ and ChanServ, pseudo-users that answer ``PRIVMSG <service> :<command>``."""
