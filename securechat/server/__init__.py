"""The chat server: a sans-I/O core (core, state, rooms, commands) in a thin asyncio shell."""
