"""The solver methods, one module each. Importing this package imports every module in it, and
each registers its classes by name (`@SOLVERS.register`) and declares its place in listings
(`rank`): a new method is one new module here (and its section in docs/solvers.md), nothing
else. The modules import torch only inside their steps, so the declarations load without it.
"""

from solvers.registry import register_modules

register_modules(__name__, __path__)
