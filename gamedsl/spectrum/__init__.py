"""Spectra of compiled games: the Jacobian of the vector field, dense or by Arnoldi (Figure 3)."""
