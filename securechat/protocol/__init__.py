"""The sans-I/O IRC wire format shared by the server and the client."""
