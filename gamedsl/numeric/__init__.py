"""Numeric analysis on the torch compilation of a game: the spectra of v' and w', dense or by
Arnoldi (Figure 3; spectrum.py), and the solver runs that check the symbolic predictions of
`gamedsl analyze --verify` (verify.py). The symbolic side is gamedsl/symbolic/.
"""
