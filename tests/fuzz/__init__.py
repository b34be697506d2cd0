"""Fuzz harnesses (atheris, the optional ``fuzz`` extra)."""
