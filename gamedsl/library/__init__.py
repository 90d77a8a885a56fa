"""What the language itself provides: the built-in functions (functions.py), the typed argument
lists of every call (signature.py) and the standard divergences, written in the language
(divergences.game). The builders and sources are registered next to their implementations,
in gamedsl/nets/ and gamedsl/data/.
"""
