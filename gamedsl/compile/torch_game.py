"""A checked game compiled to PyTorch: an `nn.Module` that implements `solvers.Game`.

Networks become `nn.Module`s (in `game.networks`, ready to save, load and reuse), `param`
declarations become `nn.Parameter`s (in `game.variables`); both are looked up by the
game's names, whatever they are (see `Named`). Data and latent variables
become samplers with their own seeded `torch.Generator`s, and the utilities become one
compiled program (see torch_program.py). `forward(batch)` returns the utilities, so
`torch.func.functional_call` works on the whole game.

Sampling is organised in *shards*: shard k of every variable has its own generator, and a
global batch is the concatenation of the shards' parts. A data-parallel process draws only
its own shards; a single process drawing all of them sees the same global batch.

Two optional hooks of `solvers.Game` carry the networks' Lipschitz constraints: `project`
(weight clipping, defined only when a network is clipped) and `after_step` (spectral
normalisation's power iteration, defined only when a network is normalised).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from gamedsl.compile.torch_program import Program
from gamedsl.data.sources import SOURCES
from gamedsl.errors import UsageError
from gamedsl.nets.builders import BUILDERS
from gamedsl.nets.spectral import advance, normalisations
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame, ParamInfo

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def derive_seed(seed: int, *keys) -> int:
    """A stable 63-bit seed for a named stream (Python's hash() is salted per process)."""
    digest = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device '{name}' was requested but CUDA is not available", hint="use --device cpu or auto")
    return torch.device(name)


@dataclass
class CompiledPlayer:
    name: str
    params: list[nn.Parameter]


class TorchGame(nn.Module):
    def __init__(
        self,
        spec: CheckedGame,
        *,
        batch: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        shards: int = 1,
        shard_ids: Sequence[int] | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
        self.batch_size = batch
        self.seed = seed
        if batch % shards:
            raise UsageError(f"the batch ({batch}) must be divisible by the number of shards ({shards})")
        self.shard_ids = list(range(shards)) if shard_ids is None else list(shard_ids)
        self.shard_batch = batch // shards

        with torch.random.fork_rng(devices=[]), _default_dtype(torch.float32):
            # initialise in float32 whatever the process's default dtype, so a seed means one start
            torch.manual_seed(derive_seed(seed, "init"))
            self.networks = Named({n: BUILDERS[net.builder].module(net.args) for n, net in spec.networks.items()})
        init = torch.Generator().manual_seed(derive_seed(seed, "params"))
        self.variables = Named({n: nn.Parameter(_initial(p, init)) for n, p in spec.params.items()})
        self.to(device=self.device, dtype=self.dtype)

        self.players = [
            CompiledPlayer(p.name, [t for name in p.controls for t in self._tensors_of(name)]) for p in spec.players
        ]
        self._clipped = self._clipping()
        if any(self._clipped):  # only then: an unclipped game's steps call no projection at all
            self.project = self._project
        self._normalised = [pair for net in self.networks.values() for pair in normalisations(net)]
        if self._normalised:
            self.after_step = self._advance
        self.samplers = {n: SOURCES[s.source].sampler(s.args) for n, s in spec.samples.items()}
        self.generators = {
            n: [torch.Generator().manual_seed(derive_seed(seed, "sample", n, k)) for k in self.shard_ids] for n in spec.samples
        }

        programs = [self._program() for _ in range(len(spec.players) + 1)]
        outputs = [programs[0].add(p.utility) for p in spec.players]
        self._utilities = programs[0].runner(outputs)
        self._single = [prog.runner([prog.add(p.utility)]) for prog, p in zip(programs[1:], spec.players)]

    def _tensors_of(self, name: str) -> list[nn.Parameter]:
        if name in self.variables:
            return [self.variables[name]]
        return list(self.networks[name].parameters())

    # ---- Lipschitz constraints (the builders' `clip` and `spectral`)
    def _clipping(self) -> list[list[tuple[int, float]]]:
        """Each player's clipped tensors, as (position among the player's tensors, bound c). The
        clipped networks start inside [-c, c] too (Arjovsky et al. clip before the critic's
        first use), whether a player controls them or not."""
        bounds = {name: net.args.get("clip") for name, net in self.spec.networks.items()}
        with torch.no_grad():
            for name, bound in bounds.items():
                for t in self.networks[name].parameters() if bound is not None else ():
                    t.clamp_(-bound, bound)
        out = []
        for player in self.spec.players:
            at, mine = 0, []
            for name in player.controls:
                count = len(self._tensors_of(name))
                if bounds.get(name) is not None:
                    mine += [(at + k, bounds[name]) for k in range(count)]
                at += count
            out.append(mine)
        return out

    def _project(self, index: int, tensors: list[torch.Tensor]) -> None:
        """solvers' `project`: player `index`'s tensors (the game's own, or explicit ones in a
        compiled or vmapped step, in the same order) back into [-c, c], in place. (Two one-sided
        clamps: vmap has batching rules for them, not for the two-sided in-place clamp.)"""
        for k, bound in self._clipped[index]:
            tensors[k].clamp_min_(-bound).clamp_max_(bound)

    def _advance(self) -> None:
        """solvers' `after_step`: one power iteration of every spectral normalisation, at the
        weights the step left, so that the next step divides by the new estimate."""
        advance(self._normalised)

    def _program(self) -> Program:
        def leaf(node: ir.Node):
            if isinstance(node, ir.Param):
                variables, name = self.variables, node.name
                return lambda vals, env: variables[name]
            name = node.name
            return lambda vals, env: env[name]

        networks = self.networks
        return Program(leaf, lambda name: networks[name], self.dtype, self.device)

    # ---- solvers.Game
    def sample(self) -> dict[str, torch.Tensor]:
        """One batch: every data and latent variable, the same draw for every use in a step."""
        batch = {}
        for name, sampler in self.samplers.items():
            parts = [sampler.sample(self.shard_batch, g, self.dtype) for g in self.generators[name]]
            value = parts[0] if len(parts) == 1 else torch.cat(parts)
            batch[name] = value.to(self.device, non_blocking=True)
        return batch

    def utilities(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return self._utilities(batch)

    def utility(self, index: int, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._single[index](batch)[0]

    def forward(self, batch: dict[str, torch.Tensor], player: int | None = None):
        """All utilities, or only `player`'s (what torch.func.functional_call evaluates)."""
        return self._utilities(batch) if player is None else self._single[player](batch)[0]

    # ---- reproducibility
    def rng_state(self) -> dict[str, list[torch.Tensor]]:
        return {name: [g.get_state() for g in gens] for name, gens in self.generators.items()}

    def set_rng_state(self, state: dict[str, list[torch.Tensor]]) -> None:
        for name, states in state.items():
            for g, s in zip(self.generators[name], states, strict=True):
                g.set_state(s)

    # ---- samples of the model and of the data (fresh, fixed streams: training is unaffected)
    def draw_batch(self, stream: str) -> dict[str, torch.Tensor]:
        """A batch like `sample()`, from the fixed stream `stream` instead of the training streams."""
        batch = {}
        for name, sampler in self.samplers.items():
            g = torch.Generator().manual_seed(derive_seed(self.seed, stream, name))
            batch[name] = sampler.sample(self.batch_size, g, self.dtype).to(self.device)
        return batch

    def draw(self, which: str, n: int, stream: str = "eval") -> torch.Tensor | None:
        """n samples of the `real` or `fake` side of the game's divergence, from a fixed stream.

        The same call returns samples from the same z every time, so pictures taken at
        different steps are comparable.
        """
        if self.spec.comparison is None:
            return None
        node = self.spec.comparison[0 if which == "real" else 1]
        names = ir.samples(node)
        env = {}
        for name in names:
            g = torch.Generator().manual_seed(derive_seed(self.seed, stream, name))
            env[name] = self.samplers[name].sample(n, g, self.dtype).to(self.device)
        program = self._program()
        run = program.runner([program.add(node)])
        with torch.no_grad():
            value = run(env)[0]
        if not node.sampled:
            value = value.expand(n, *value.shape)
        return value.detach()


class Named(nn.Module):
    """The game's networks or params, looked up by their names in the game.

    nn.ModuleDict and nn.ParameterDict make every entry an attribute, so they refuse names
    that are already attributes of a module (`train`, `eval`, `to`, `float`, `forward`,
    `_apply`, ...), and torch.func.functional_call, which finds a tensor by `getattr` along
    its dotted name, would reach the method instead of the entry. Here an entry is
    registered under its own name unless that name is an attribute of this container; then
    under the name followed by `$`, which no game name contains, so keys stay distinct and
    every other name keeps its key in state dicts and checkpoints (`networks.G.2.running_mean`).
    """

    MARK = "$"

    def __init__(self, entries: dict[str, nn.Module | nn.Parameter]):
        super().__init__()
        self.keys_of: dict[str, str] = {}
        for name, entry in entries.items():
            key = name + self.MARK if hasattr(self, name) else name
            if isinstance(entry, nn.Parameter):
                self.register_parameter(key, entry)
            else:
                self.add_module(key, entry)
            self.keys_of[name] = key

    def __getitem__(self, name: str):
        return getattr(self, self.keys_of[name])

    def __contains__(self, name: object) -> bool:
        return name in self.keys_of

    def __iter__(self):
        return iter(self.keys_of)

    def __len__(self) -> int:
        return len(self.keys_of)

    def keys(self):
        return self.keys_of.keys()

    def values(self):
        return [self[name] for name in self.keys_of]

    def items(self):
        return [(name, self[name]) for name in self.keys_of]


@contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _initial(info: ParamInfo, generator: torch.Generator) -> torch.Tensor:
    kind, *args = info.init
    shape = info.shape
    if kind == "fill":
        return torch.full(shape, args[0], dtype=torch.float64)
    if kind == "values":
        return torch.tensor(args[0], dtype=torch.float64).reshape(shape)
    if kind == "normal":
        mean, std = args
        return mean + std * torch.randn(shape, generator=generator, dtype=torch.float64)
    low, high = args
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)
