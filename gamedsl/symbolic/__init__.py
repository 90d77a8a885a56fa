"""Symbolic analysis of a game (`gamedsl analyze`), in sympy: the field v and its Jacobian v',
stationary points, the Nash test, Lemma 4's step bounds and each solver's linearised one-step
map (which the solver declares in torch, evaluated once on the float64 matrix v'(x-bar); nothing
here runs a solver). The runs that check the predictions execute the torch compilation of the
game and live with the other numeric computations, in gamedsl/numeric/.
"""
