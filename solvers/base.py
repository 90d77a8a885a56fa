"""What every solver method is: hyperparameters, `init`, and one `step`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from solvers.registry import Registry

if TYPE_CHECKING:  # the declarations are read without torch (`gamedsl check`)
    import torch

    from solvers.engine import Engine, Evaluation, Vec


@dataclass
class Step:
    """What one step saw: each player's utility and the field v (both detached)."""

    utilities: list[torch.Tensor]
    field: Vec
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @staticmethod
    def of(ev: Evaluation, **extras: torch.Tensor) -> "Step":
        return Step([ev.utilities[i] for i in ev.players], ev.v, extras)


class Solver:
    """A method for finding local Nash equilibria. Subclasses are registered dataclasses."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `gamedsl solvers` and the docs
    # Its place in every listing by method (`gamedsl analyze`): the paper's methods first, in
    # tens, so that a new method slots in between without renumbering; equal ranks go by name.
    rank: ClassVar[int] = 1000  # a method that declares none comes after the built-in ones
    polls: ClassVar[bool] = False  # calls engine.poll() inside a step, before it changes anything
    # What the method is defined for, declared so that a game can be checked before it runs
    # (`gamedsl check`); the parameters' own ranges are declared with `param`.
    players: ClassVar[int | None] = None  # the number of players; None: any
    optimizers: ClassVar[tuple[str, ...] | None] = None  # the optimizers it can step with; None: any
    optimizer_hint: ClassVar[str | None] = None  # why the others are refused, and what to do instead
    one_optimizer: ClassVar[bool] = False  # its step size is part of the method: one optimizer for every player
    # What it can be run as: `vectorizes` says that its step runs under torch.func.vmap, so that
    # a sweep advances every configuration at once (gamedsl/sweep/vectorized.py), and `compiles`
    # that it can be traced into one graph (solvers/compiled.py); a step that takes host-side
    # decisions on values (GMRES's floats) can do neither.
    vectorizes: ClassVar[bool] = True
    compiles: ClassVar[bool] = True
    # whether a player may take several steps for each of the others' (Run's critic_steps)
    critic_steps: ClassVar[bool] = False
    # Its one-step map F linearised at a stationary point x-bar, F'(x-bar), which `gamedsl
    # analyze` predicts convergence from (gamedsl/symbolic/linearize.py): the formula in words,
    # the state the map acts on, and `linearization`, which builds the matrix.
    formula: ClassVar[str | None] = None  # None: the method has no fixed one-step map
    carries: ClassVar[str] = "x"  # "(x, m)" when the method keeps a vector between steps

    def init(self, engine: Engine) -> dict[str, Any]:
        """Per-run state (momentum buffers, previous fields). Tensors only, for checkpoints."""
        return {}

    def step(self, engine: Engine, state: dict[str, Any]) -> Step:
        raise NotImplementedError

    def batches_per_step(self, players: int) -> int:
        """How many batches one step draws (vectorised sweeps draw them in advance)."""
        return 1

    def check(self) -> None:
        """Validate relations between hyperparameters (each one's range is declared); raise SolverError."""

    def linearization(
        self, J: torch.Tensor, blocks: list[slice], players: list[str], h: float | torch.Tensor
    ) -> torch.Tensor | str:
        """F'(x-bar) for plain steps sgd(lr=h), from J = v'(x-bar) (float64), the players'
        blocks of coordinates and their names; or, where there is no fixed map, the reason.
        By Proposition 3 the method converges locally at the rate of its spectral radius if
        that is below 1. Methods that keep vectors between steps linearise on the whole state.

        `h` is one float when every player steps with the same sgd learning rate, and otherwise
        a float64 column (n x 1) holding each coordinate's rate: player i's h_i on its block.
        The step matrix is then H = diag(h), and `h * M` (a column broadcast over M's columns)
        is H M, so a map written as `eye + h * J` is I + H J for both; a product with H on the
        right (J H) must be written `J @ (h * eye)`. A method that has no map for unequal rates
        returns the reason instead."""
        return f"no linearisation known for solver {self.name}"


SOLVERS: Registry[Solver] = Registry("solver")


def block_matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """One matrix from a grid of blocks, like numpy's `block`: the linearisations on a state (x, m)."""
    import torch

    return torch.cat([torch.cat(row, dim=1) for row in rows], dim=0)


def own_step_jacobian(J: torch.Tensor, block: slice, h: float | torch.Tensor) -> torch.Tensor:
    """I + h P_i J: the Jacobian at x-bar of one step of player i alone, x_i <- x_i + h_i v_i(x),
    P_i J being player i's rows of J (zero elsewhere); `h` as in `Solver.linearization`. AltGA
    is a product of these, and so are the critic steps `gamedsl analyze` composes with a step."""
    import torch

    rows = torch.zeros_like(J)
    rows[block] = J[block]
    return torch.eye(len(J), dtype=J.dtype) + h * rows


def player_index(engine: Engine, name: str, default: int) -> int:
    """Resolve a player parameter given by name ("" means `default`)."""
    from solvers.errors import SolverError

    if not name:
        return default
    names = [p.name for p in engine.players]
    if name not in names:
        raise SolverError(f"no player named '{name}'", "players: " + ", ".join(names))
    return names.index(name)
