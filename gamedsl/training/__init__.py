"""Running a game: a session (compiled game + solver + run directory) and its monitors."""
