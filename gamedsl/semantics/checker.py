"""The checker: from a parsed file to a `CheckedGame`, or one precise error.

It resolves names (with "did you mean"), binds builder and source arguments, infers the
shape and sampledness of every expression, expands lets and divergences into the typed IR,
and enforces the rules of a well-formed game: every parameter belongs to exactly one
player, every utility is a deterministic scalar that depends on what its player controls,
every E[...] averages something sampled. Like CVXPY's rule checker it reports the smallest
offending sub-expression and suggests a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from gamedsl.data.sources import INITIALIZERS, SOURCES
from gamedsl.errors import GameCheckError, GameError, GameWarning, LimitError, Source, Span, UsageError
from gamedsl.library.functions import FUNCTIONS, NOT_BUILT_IN
from gamedsl.library.signature import close_match, normalize_shape, show_shape, suggest
from gamedsl.nets.builders import BUILDERS
from gamedsl.semantics import comparison, ir
from gamedsl.semantics.model import CheckedGame, NetworkInfo, ParamInfo, PlayerInfo, SampleInfo, network_footprint, without_batch_norm
from gamedsl.syntax import ast
from gamedsl.syntax.parser import parse_source

RESERVED = {
    "game", "param", "network", "data", "latent", "divergence", "let", "player", "controls",
    "maximizes", "minimizes", "maximises", "minimises", "maximize", "minimize", "maximise",
    "minimise", "solve", "true", "false", "E",
}  # fmt: skip

PARTS = ("g1", "g2")
SCALAR_KINDS = ("elementwise", "broadcast")  # the functions a divergence part may use: numbers to numbers
DIVERGENCE_ARGS = ("critic", "real", "fake")
# Expressions after lets and divergences are expanded: the compilers walk them recursively
# and hash them structurally, so both their size and their depth must stay bounded.
MAX_EXPANDED_SIZE = 100_000
MAX_EXPANDED_DEPTH = 200
LIBRARY_PATH = Path(__file__).resolve().parent.parent / "library" / "divergences.game"


@dataclass(frozen=True)
class _Divergence:
    """A divergence's two parts as IR templates in the variable `Var('t')`."""

    name: str
    parts: dict[str, ir.Node]
    span: Span


@lru_cache(maxsize=1)
def library() -> dict[str, _Divergence]:
    """The standard divergences, parsed and checked from `divergences.game`."""
    source = Source(str(LIBRARY_PATH), LIBRARY_PATH.read_text(encoding="utf-8"))
    file = parse_source(source)
    checker = _Checker(file, source, {}, {})
    return {d.name: checker.divergence(d) for d in file.of_type(ast.DivergenceDecl)}


def check(file: ast.GameFile, source: Source, overrides: dict[str, str] | None = None) -> CheckedGame:
    """Check a parsed game. `overrides` retargets divergence aliases (`--set divergence.NAME=...`)."""
    try:
        return _Checker(file, source, library(), overrides or {}).run()
    except GameError as exc:  # GameCheckError, or LimitError for expressions that expand too far
        raise exc.at(source) from None


def check_source(source: Source, overrides: dict[str, str] | None = None) -> CheckedGame:
    return check(parse_source(source), source, overrides)


class _Checker:
    def __init__(self, file: ast.GameFile, source: Source, stdlib: dict[str, _Divergence], overrides: dict[str, str]):
        self.file = file
        self.source = source
        self.stdlib = stdlib
        self.overrides = overrides
        self.warnings: list[GameWarning] = []
        self.decls: dict[str, ast.Decl] = {}
        self.params: dict[str, ParamInfo] = {}
        self.networks: dict[str, NetworkInfo] = {}
        self.samples: dict[str, SampleInfo] = {}
        self.divergences: dict[str, _Divergence] = dict(stdlib)
        self.aliases: dict[str, str] = {}
        self.lets: dict[str, ir.Node] = {}
        self.extents: dict[int, tuple[ir.Node, int, int]] = {}  # id -> (node, size, depth), see extent()
        self.used: set[str] = set()
        self.comparisons: list[tuple[ir.Node, ir.Node]] = []  # (real, fake) of each divergence call
        self.gradients = 0  # grad(...) calls so far: each binds a variable of its own

    # ---- driver ------------------------------------------------------------------------

    def run(self) -> CheckedGame:
        self.declare_names()
        self.check_overrides()
        # lets last: a let may use any name, including those declared after it
        for decl in sorted(self.file.decls, key=lambda d: isinstance(d, ast.LetDecl)):
            self.declaration(decl)
        players = self.players()
        self.check_ownership(players)
        for name, decl in self.decls.items():
            if isinstance(decl, (ast.LetDecl, ast.SampleDecl)) and name not in self.used:
                what = "let" if isinstance(decl, ast.LetDecl) else decl.kind
                self.warnings.append(GameWarning(f"{what} '{name}' is never used", span=decl.name_span))
        settings = self.settings()
        game = CheckedGame(
            name=self.file.header.name,
            description=self.file.header.description,
            params=self.params,
            networks=self.networks,
            samples=self.samples,
            players=tuple(players),
            settings=settings,
            aliases=dict(self.aliases),
            comparison=self.comparisons[0] if self.comparisons else comparison.infer(players, self.samples),
            source=self.source,
            file=self.file,
            warnings=tuple(w.at(self.source) for w in self.warnings),
        )
        from gamedsl.semantics.runnable import check_file

        check_file(game)  # what `solve` would find: settings that do not fit the game, sizes beyond memory
        return game

    def declare_names(self) -> None:
        for decl in self.file.decls:
            if isinstance(decl, (ast.SolveBlock, ast.PlayerDecl)):
                continue
            name, span = decl.name, decl.name_span
            if name in RESERVED:
                raise GameCheckError(f"'{name}' is a reserved word", span=span, hint="choose another name")
            if name in FUNCTIONS:
                raise GameCheckError(f"'{name}' is a built-in function", span=span, hint="choose another name")
            if name in self.decls:
                first = self.decls[name].name_span
                raise GameCheckError(
                    f"'{name}' is already declared on line {first.line}", span=span, hint="each name is declared once"
                )
            self.decls[name] = decl

    def declaration(self, decl: ast.Decl) -> None:
        match decl:
            case ast.ParamDecl():
                self.params[decl.name] = self.param(decl)
            case ast.NetworkDecl():
                self.networks[decl.name] = self.network(decl)
            case ast.SampleDecl():
                self.samples[decl.name] = self.sample(decl)
            case ast.DivergenceDecl():
                self.divergences[decl.name] = self.divergence(decl)
            case ast.AliasDecl():
                self.aliases[decl.name] = self.alias(decl)
            case ast.LetDecl():
                self.let(decl.name)

    # ---- declarations --------------------------------------------------------------------

    def param(self, decl: ast.ParamDecl) -> ParamInfo:
        init = decl.init
        size = decl.size
        match init:
            case ast.NumberValue(value=v):
                spec = ("fill", float(v))
            case ast.ListValue(items=items):
                values = tuple(_number(item, "a parameter's initial values") for item in items)
                if not values:
                    raise GameCheckError("an empty list cannot initialise a parameter", span=init.span)
                if size is not None and size != len(values):
                    raise GameCheckError(
                        f"parameter '{decl.name}' has size {size} but {len(values)} initial values",
                        span=init.span,
                        hint=f"give {size} values, or change the size",
                    )
                size = len(values)
                spec = ("values", values)
            case ast.CallValue(name=name) if name in INITIALIZERS:
                bound = INITIALIZERS[name].bind(init, "initialiser")
                spec = (name, *bound.values())
            case ast.CallValue(name=name):
                raise GameCheckError(
                    f"unknown initialiser '{name}'", span=init.name_span, hint=suggest(name, INITIALIZERS, "initialisers")
                )
            case _:
                raise GameCheckError(
                    "a parameter starts from a number, a list of numbers, normal(mean, std) or uniform(low, high)",
                    span=init.span,
                )
        shape = normalize_shape((size,) if size is not None else ())
        return ParamInfo(decl.name, shape, spec, decl)

    def network(self, decl: ast.NetworkDecl) -> NetworkInfo:
        call = decl.builder
        builder = BUILDERS.get(call.name)
        if builder is None:
            raise GameCheckError(
                f"unknown network builder '{call.name}'", span=call.name_span, hint=suggest(call.name, BUILDERS, "builders")
            )
        args = builder.signature.bind(call, "builder")
        source, target = builder.shapes(args)
        return NetworkInfo(decl.name, call.name, args, normalize_shape(source), normalize_shape(target), decl)

    def sample(self, decl: ast.SampleDecl) -> SampleInfo:
        call = decl.source
        source = SOURCES.get(call.name)
        if source is None:
            raise GameCheckError(
                f"unknown {decl.kind} source '{call.name}'",
                span=call.name_span,
                hint=suggest(call.name, [n for n, s in SOURCES.items() if decl.kind in s.kinds], f"{decl.kind} sources"),
            )
        if decl.kind not in source.kinds:
            allowed = sorted(n for n, s in SOURCES.items() if decl.kind in s.kinds)
            raise GameCheckError(
                f"'{call.name}' is not a {decl.kind} source",
                span=call.name_span,
                hint=f"{decl.kind} sources: " + ", ".join(allowed),
            )
        args = source.signature.bind(call, "source")
        return SampleInfo(decl.name, decl.kind, call.name, args, normalize_shape(source.shape(args)), decl)

    def divergence(self, decl: ast.DivergenceDecl) -> _Divergence:
        parts: dict[str, ir.Node] = {}
        for part in decl.parts:
            if part.name not in PARTS:
                raise GameCheckError(
                    f"a divergence has parts g1 and g2, not '{part.name}'",
                    span=part.span,
                    hint=close_match(part.name, PARTS) or "write g1(t) = ... and g2(t) = ...",
                )
            if part.name in parts:
                raise GameCheckError(f"part '{part.name}' is defined twice", span=part.span)
            if len(part.params) != 1:
                raise GameCheckError(
                    f"'{part.name}' must be a function of one variable, but it takes {len(part.params)}",
                    span=part.span,
                    hint=f"write {part.name}(t) = ...",
                )
            parts[part.name] = _PartChecker(part).run()
        missing = [p for p in PARTS if p not in parts]
        if missing:
            raise GameCheckError(
                f"divergence '{decl.name}' lacks its part {missing[0]}",
                span=decl.name_span,
                hint=f"add {missing[0]}(t) = ...; eq. (2) needs both g1 and g2",
            )
        return _Divergence(decl.name, parts, decl.name_span)

    def alias(self, decl: ast.AliasDecl) -> str:
        target = self.overrides.get(decl.name, decl.target.id)
        span = decl.target.span
        via = decl.name if decl.name in self.overrides else None  # the alias whose --set gave `target`
        seen = [decl.name]
        while target in self.decls and isinstance(self.decls[target], ast.AliasDecl) and target not in seen:
            seen.append(target)
            nxt = self.decls[target]
            via = target if target in self.overrides else None
            target, span = self.overrides.get(target, nxt.target.id), nxt.target.span
        if target in seen:
            cycle = " -> ".join(seen[seen.index(target) :] + [target])
            raise GameCheckError(
                f"divergence alias '{decl.name}' refers to itself ({cycle})",
                span=decl.target.span,
                hint="an alias names a divergence, such as gan or wasserstein",
            )
        known = set(self.stdlib) | {n for n, d in self.decls.items() if isinstance(d, ast.DivergenceDecl)}
        if target not in known:
            what = f"{_describe_decl(self.decls[target])}, not a divergence" if target in self.decls else "not a divergence"
            if via is not None:  # the name came from the command line: point there
                hint = suggest(target, known, "divergences")
                raise _override_error(via, target, f"'{target}' is {what}", hint, value=True)
            raise GameCheckError(f"'{target}' is {what}", span=span, hint=suggest(target, known, "divergences"))
        return target

    def check_overrides(self) -> None:
        """Every `--set divergence.NAME=...` must name a divergence alias of this game."""
        aliases = [name for name, decl in self.decls.items() if isinstance(decl, ast.AliasDecl)]
        for name, target in self.overrides.items():
            if name not in aliases:
                hint = suggest(name, aliases, "its aliases") or "declare one, e.g. divergence objective = gan"
                raise _override_error(name, target, f"the game has no divergence alias '{name}'", hint, value=False)

    def let(self, name: str) -> ir.Node:
        """The IR of a let. The lets it uses are checked first, in an order found without
        recursion, so that a long chain of lets cannot exhaust Python's stack."""
        if name in self.lets:
            return self.lets[name]
        for current in self.let_order(name):
            decl = self.decls[current]
            node = self.expr(decl.value)
            self.limit(node, decl.name_span, f"let '{current}'")
            self.lets[current] = node
        return self.lets[name]

    def let_order(self, name: str) -> list[str]:
        """`name` and the unchecked lets it uses, each after the lets it uses (iterative DFS)."""
        order: list[str] = []
        done: set[str] = set()  # finished in this call; self.lets holds those finished before
        path: list[str] = [name]
        pending = [iter(self.let_uses(name))]
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                pending.pop()
                finished = path.pop()
                done.add(finished)
                order.append(finished)
                continue
            if dependency in done or dependency in self.lets:
                continue
            if dependency in path:
                cycle = " -> ".join(path[path.index(dependency) :] + [dependency])
                raise GameCheckError(
                    f"'{dependency}' is defined in terms of itself ({cycle})",
                    span=self.decls[dependency].name_span,
                    hint="a let names a value computed from others; it cannot use itself",
                )
            path.append(dependency)
            pending.append(iter(self.let_uses(dependency)))
        return order

    def let_uses(self, name: str) -> list[str]:
        """The lets named in the body of the let `name`, in reading order."""
        uses, stack = [], [self.decls[name].value]
        while stack:
            node = stack.pop()
            match node:
                case ast.Name(id=ref) if isinstance(self.decls.get(ref), ast.LetDecl):
                    uses.append(ref)
                case ast.Unary(operand=x) | ast.Index(value=x) | ast.Expect(body=x):
                    stack.append(x)
                case ast.Binary(left=a, right=b):
                    stack.extend((b, a))
                case ast.Call(args=args, kwargs=kwargs):
                    stack.extend(reversed([*args, *(k.value for k in kwargs)]))
                case ast.Vector(items=items):
                    stack.extend(reversed(items))
        return list(dict.fromkeys(uses))

    def limit(self, node: ir.Node, span: Span, what: str) -> None:
        """Refuse expressions that lets and divergences expand beyond what can be compiled.

        Lets are shared in the IR, so `let b = a * a` chains stay small here but double in
        size at each step once expanded; sizes are counted over the shared graph.
        """
        size, depth = self.extent(node)
        if size > MAX_EXPANDED_SIZE:
            raise LimitError(
                f"{what} is too large once its lets and divergences are expanded "
                f"(more than {MAX_EXPANDED_SIZE:,} operations)",
                span=span,
                hint="each use of a let copies its expression; simplify the definitions",
            )
        if depth > MAX_EXPANDED_DEPTH:
            raise LimitError(
                f"{what} is nested too deeply once its lets and divergences are expanded "
                f"({depth} levels; the limit is {MAX_EXPANDED_DEPTH})",
                span=span,
                hint="shorten the chain of lets that build on each other",
            )

    def extent(self, root: ir.Node) -> tuple[int, int]:
        """(expanded size, depth) of an IR graph, memoized by node identity, without recursion."""
        memo = self.extents
        stack = [root]
        while stack:
            node = stack[-1]
            if id(node) in memo:
                stack.pop()
                continue
            pending = [c for c in node.children() if id(c) not in memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            kids = [memo[id(c)] for c in node.children()]
            size = min(1 + sum(k[1] for k in kids), MAX_EXPANDED_SIZE + 1)
            memo[id(node)] = (node, size, 1 + max((k[2] for k in kids), default=0))
        return memo[id(root)][1:]

    # ---- players -------------------------------------------------------------------------

    def players(self) -> list[PlayerInfo]:
        decls = self.file.of_type(ast.PlayerDecl)
        names: dict[str, ast.PlayerDecl] = {}
        owner: dict[str, str] = {}
        players = []
        for decl in decls:
            if decl.name in names:
                raise GameCheckError(
                    f"player '{decl.name}' is already declared on line {names[decl.name].name_span.line}",
                    span=decl.name_span,
                )
            names[decl.name] = decl
            for ref in decl.controls:
                target = self.decls.get(ref.id)
                if target is None:
                    choices = [n for n, d in self.decls.items() if isinstance(d, (ast.ParamDecl, ast.NetworkDecl))]
                    raise GameCheckError(
                        f"undefined name '{ref.id}'",
                        span=ref.span,
                        hint=close_match(ref.id, choices) or "a player controls parameters (param) and networks (network)",
                    )
                if not isinstance(target, (ast.ParamDecl, ast.NetworkDecl)):
                    raise GameCheckError(
                        f"a player controls parameters and networks, but '{ref.id}' is {_describe_decl(target)}",
                        span=ref.span,
                    )
                if ref.id in owner:
                    who = "this player" if owner[ref.id] == decl.name else f"player {owner[ref.id]}"
                    raise GameCheckError(
                        f"'{ref.id}' is already controlled by {who}",
                        span=ref.span,
                        hint="each parameter and network belongs to exactly one player",
                    )
                owner[ref.id] = decl.name
            players.append(self.player(decl))
        if len(players) < 2:
            span = decls[-1].name_span if decls else self.file.header.span
            raise GameCheckError(
                f"a game needs at least two players, this one has {len(players)}",
                span=span,
                hint="declare each with: player NAME controls ... maximizes|minimizes ...",
            )
        return players

    def player(self, decl: ast.PlayerDecl) -> PlayerInfo:
        objective = self.expr(decl.objective)
        span = decl.objective.span
        self.limit(objective, span, f"the objective of player {decl.name}")
        if objective.sampled:
            names = ", ".join(f"'{n}'" for n in sorted(_unaveraged_samples(objective)))
            raise GameCheckError(
                f"the objective of player {decl.name} depends on sampled {names} outside an expectation",
                span=_sampled_span(decl.objective, self),
                hint="wrap the sampled part in E[...]",
            )
        if objective.shape:
            raise GameCheckError(
                f"the objective of player {decl.name} must be a number, but it is {show_shape(objective.shape)}",
                span=span,
                hint="reduce it with sum(...), mean(...) or norm(...)",
            )
        controls = tuple(ref.id for ref in decl.controls)
        used = ir.dependencies(objective)
        if not used & set(controls):
            raise GameCheckError(
                f"the objective of player {decl.name} does not depend on "
                + _conjunction([f"'{c}'" for c in controls])
                + (", which it controls" if len(controls) == 1 else ", which it controls"),
                span=span,
                hint="a player must be able to change its own utility",
            )
        for ref in decl.controls:
            if ref.id not in used:
                self.warnings.append(
                    GameWarning(f"player {decl.name} controls '{ref.id}' but its objective does not depend on it", span=ref.span)
                )
        utility = objective if decl.maximize else ir.neg(objective, span)
        return PlayerInfo(decl.name, controls, decl.maximize, utility, decl)

    def check_ownership(self, players: list[PlayerInfo]) -> None:
        owned = {name for p in players for name in p.controls}
        for name, decl in self.decls.items():
            if isinstance(decl, (ast.ParamDecl, ast.NetworkDecl)) and name not in owned:
                what = "parameter" if isinstance(decl, ast.ParamDecl) else "network"
                raise GameCheckError(
                    f"{what} '{name}' is controlled by no player",
                    span=decl.name_span,
                    hint=f"add it to a player's list: player NAME controls {name} ...",
                )

    def settings(self) -> dict[str, ast.Setting]:
        from gamedsl.semantics.settings import check_settings

        blocks = self.file.of_type(ast.SolveBlock)
        if len(blocks) > 1:
            raise GameCheckError("a game has at most one solve block", span=blocks[1].span, hint="merge the two blocks")
        settings = blocks[0].settings if blocks else ()
        return check_settings(settings)

    # ---- expressions ----------------------------------------------------------------------

    def expr(self, node: ast.Expr) -> ir.Node:
        match node:
            case ast.Number(value=v):
                return ir.const(v, node.span)
            case ast.Name():
                return self.name(node)
            case ast.Unary(op=op, operand=x):
                inner = self.expr(x)
                return ir.neg(inner, node.span) if op == "-" else inner
            case ast.Binary(op=op, left=a, right=b):
                return self.binary(node, op, self.expr(a), self.expr(b))
            case ast.Call():
                return self.call(node)
            case ast.Index(value=value, index=i):
                inner = self.expr(value)
                if len(inner.shape) != 1:
                    raise GameCheckError(f"only vectors can be indexed, but this is {show_shape(inner.shape)}", span=value.span)
                if i >= inner.shape[0]:
                    raise GameCheckError(
                        f"index {i} is out of range for a vector of size {inner.shape[0]}",
                        span=node.span,
                        hint=f"indices run from 0 to {inner.shape[0] - 1}",
                    )
                return ir.index(inner, i, node.span)
            case ast.Expect(body=body):
                inner = self.expr(body)
                if not inner.sampled:
                    raise GameCheckError(
                        "nothing inside E[...] is sampled",
                        span=body.span,
                        hint="E[...] averages over data and latent samples; use the expression without E",
                    )
                return ir.mean(inner, node.span)
            case ast.Vector(items=items):
                return self.vector(node, items)
        raise AssertionError(f"unknown node {node!r}")

    def vector(self, node: ast.Vector, items: tuple[ast.Expr, ...]) -> ir.Node:
        """`[a, b, c]`: a vector of scalars (the same IR as concat(a, b, c))."""
        values = [self.expr(item) for item in items]
        for item, value in zip(items, values):
            if value.shape:
                raise GameCheckError(
                    f"the entries of a vector literal are numbers, but this is {show_shape(value.shape)}",
                    span=item.span,
                    hint="join vectors with concat(u, v)",
                )
        return ir.fn("concat", tuple(values), node.span)

    def binary(self, node: ast.Binary, op: str, a: ir.Node, b: ir.Node) -> ir.Node:
        if ir.broadcast(a.shape, b.shape) is None:
            raise GameCheckError(
                f"cannot combine {show_shape(a.shape)} and {show_shape(b.shape)} with '{op}'",
                span=node.span,
                hint="operands must have the same shape, or one must be a number",
            )
        return ir.binary(op, a, b, node.span)

    def name(self, node: ast.Name) -> ir.Node:
        decl = self.decls.get(node.id)
        self.used.add(node.id)
        match decl:
            case ast.ParamDecl():
                return ir.Param(self.params[node.id].shape, False, node.id, node.span)
            case ast.SampleDecl():
                return ir.Sample(self.samples[node.id].shape, True, node.id, node.span)
            case ast.LetDecl():
                return self.let(node.id)
            case ast.NetworkDecl():
                raise GameCheckError(
                    f"'{node.id}' is a network; apply it to an input", span=node.span, hint=f"for example {node.id}(x)"
                )
            case ast.DivergenceDecl() | ast.AliasDecl():
                raise self.bare_divergence(node)
        if node.id in self.stdlib:
            raise self.bare_divergence(node)
        if node.id in FUNCTIONS:
            example = "grad(D, x)" if FUNCTIONS[node.id].kind == "gradient" else f"{node.id}(x)"
            raise GameCheckError(f"'{node.id}' is a function; call it", span=node.span, hint=f"for example {example}")
        raise self.undefined(node)

    def bare_divergence(self, node: ast.Name) -> GameCheckError:
        return GameCheckError(
            f"'{node.id}' is a divergence; call it with a critic and two samples",
            span=node.span,
            hint=f"for example {node.id}(critic=D, real=x, fake=G(z)), or {node.id}.g1(t)",
        )

    def undefined(self, node: ast.Name) -> GameCheckError:
        instead = NOT_BUILT_IN.get(node.id)
        if instead is not None:
            return GameCheckError(f"'{node.id}' is not in the language", span=node.span, hint=instead)
        choices = set(self.decls) | set(FUNCTIONS) | set(self.stdlib)
        return GameCheckError(
            f"undefined name '{node.id}'",
            span=node.span,
            hint=close_match(node.id, choices) or "names are declared with param, network, data, latent, let or divergence",
        )

    def resolve_divergence(self, node: ast.Name) -> _Divergence | None:
        decl = self.decls.get(node.id)
        if isinstance(decl, ast.AliasDecl):
            self.used.add(node.id)
            return self.divergences[self.aliases[node.id]] if node.id in self.aliases else self.divergences[self.alias(decl)]
        if isinstance(decl, ast.DivergenceDecl):
            if node.id not in self.divergences:
                self.divergences[node.id] = self.divergence(decl)
            return self.divergences[node.id]
        if decl is None and node.id in self.stdlib:
            return self.stdlib[node.id]
        return None

    def call(self, node: ast.Call) -> ir.Node:
        name = node.func.id
        if node.attr is not None:
            return self.part_call(node)
        if name in self.decls or name in self.stdlib:
            divergence = self.resolve_divergence(node.func)
            if divergence is not None:
                return self.divergence_call(node, divergence)
            decl = self.decls[name]
            if isinstance(decl, ast.NetworkDecl):
                self.used.add(name)
                return self.network_call(node, self.networks[name])
            raise GameCheckError(
                f"'{name}' is {_describe_decl(decl)}, not something to call",
                span=node.func.span,
                hint=f"to multiply, write {name} * (...)",
            )
        if name in FUNCTIONS:
            return self.function_call(node)
        raise self.undefined(node.func)

    def positional(self, node: ast.Call, count: int, what: str) -> list[ir.Node]:
        if node.kwargs:
            raise GameCheckError(f"{what} takes no keyword arguments", span=node.kwargs[0].span)
        if len(node.args) != count:
            plural = "argument" if count == 1 else "arguments"
            raise GameCheckError(
                f"{what} takes {count} {plural}, got {len(node.args)}",
                span=node.args[count].span if len(node.args) > count else node.span,
            )
        return [self.expr(a) for a in node.args]

    def function_call(self, node: ast.Call) -> ir.Node:
        function = FUNCTIONS[node.func.id]
        if function.kind == "gradient":
            return self.gradient(node)
        if function.arity is None:
            args = self.variadic(node, f"'{function.name}'")
        else:
            args = self.positional(node, function.arity, f"'{function.name}'")
        if function.kind == "pair" and args[0].shape != args[1].shape:
            raise GameCheckError(
                f"'{function.name}' needs two vectors of the same size, got {show_shape(args[0].shape)} "
                f"and {show_shape(args[1].shape)}",
                span=node.span,
            )
        if function.kind == "broadcast":
            shape: ir.Shape | None = ()
            for arg in args:
                shape = ir.broadcast(shape, arg.shape)
                if shape is None:
                    *first, last = [show_shape(a.shape) for a in args]
                    shapes = ", ".join(first) + " and " + last
                    raise GameCheckError(
                        f"'{function.name}' cannot combine {shapes}",
                        span=node.span,
                        hint="its arguments must have the same shape, or be numbers",
                    )
        if function.kind == "concat":
            for given, arg in zip(node.args, args):
                if len(arg.shape) > 1:
                    raise GameCheckError(
                        f"'{function.name}' joins numbers and vectors, but this is {show_shape(arg.shape)}",
                        span=given.span,
                        hint="flatten images with a network first, or concatenate their features",
                    )
        return ir.fn(function.name, tuple(args), node.span)

    def variadic(self, node: ast.Call, what: str) -> list[ir.Node]:
        if node.kwargs:
            raise GameCheckError(f"{what} takes no keyword arguments", span=node.kwargs[0].span)
        if not node.args:
            raise GameCheckError(
                f"{what} takes at least one argument", span=node.span, hint="for example concat(x, G(z))"
            )
        return [self.expr(a) for a in node.args]

    def gradient(self, node: ast.Call) -> ir.Node:
        """`grad(D, p)`: the gradient of the critic D at the points p; `grad(EXPR, x)`: the
        gradient of a scalar expression with respect to the data or latent variable x. One
        gradient per sample in both cases."""
        usage = "write grad(D, x) for a critic D at points x, or grad(EXPR, x) for a data or latent variable x"
        if node.kwargs:
            raise GameCheckError("'grad' takes no keyword arguments", span=node.kwargs[0].span, hint=usage)
        if len(node.args) != 2:
            raise GameCheckError(
                f"'grad' takes 2 arguments, got {len(node.args)}",
                span=node.args[2].span if len(node.args) > 2 else node.span,
                hint=usage,
            )
        what, where = node.args
        if isinstance(what, ast.Name) and isinstance(self.decls.get(what.id), ast.NetworkDecl):
            return self.critic_gradient(node, what, where)
        target = self.decls.get(where.id) if isinstance(where, ast.Name) else None
        if isinstance(target, ast.ParamDecl):
            raise GameCheckError(
                f"grad differentiates with respect to inputs, but '{where.id}' is a parameter",
                span=where.span,
                hint="the solvers differentiate each utility with respect to its player's parameters themselves; "
                f"grad(D, {where.id}) is the gradient of a critic D with respect to its input, at the point {where.id}",
            )
        if isinstance(target, ast.NetworkDecl):
            raise GameCheckError(
                f"grad differentiates with respect to inputs, but '{where.id}' is a network",
                span=where.span,
                hint=f"for the gradient of '{where.id}' at points p, write grad({where.id}, p)",
            )
        if not isinstance(target, ast.SampleDecl):
            raise GameCheckError(
                "grad(EXPR, x) differentiates with respect to a data or latent variable x, named by itself",
                span=where.span,
                hint="to differentiate a critic D at any points p, write grad(D, p)",
            )
        return self.sample_gradient(node, what, where)

    def critic_gradient(self, node: ast.Call, what: ast.Name, where: ast.Expr) -> ir.Node:
        net = self.networks[what.id]
        self.used.add(net.name)
        if net.output != ():
            raise GameCheckError(
                f"grad needs a critic with one output, but '{net.name}' outputs {show_shape(net.output)}",
                span=what.span,
                hint=f"the gradient of one output k is grad({net.name}(x)[k], x) for a data or latent variable x",
            )
        self.gradient_is_per_sample(net, what.span)
        at = self.expr(where)
        if at.shape != net.input:
            raise GameCheckError(
                f"network '{net.name}' takes {show_shape(net.input)}, but grad evaluates it at {show_shape(at.shape)}",
                span=where.span,
                hint=f"'{net.name}' is declared on line {net.decl.span.line} as {_arrow_text(net)}",
            )
        var = self.gradient_variable(at, where.span)
        return ir.gradient(ir.apply(net.name, (), var, what.span), var.name, at, node.span)

    def sample_gradient(self, node: ast.Call, what: ast.Expr, where: ast.Name) -> ir.Node:
        body = self.expr(what)
        if body.shape:
            raise GameCheckError(
                f"grad differentiates a number, but this is {show_shape(body.shape)}",
                span=what.span,
                hint="pick one entry with [i], or reduce it with sum(...), norm(...) or dot(...)",
            )
        for n in ir.walk(body):
            if isinstance(n, ir.Mean):
                raise GameCheckError(
                    "grad differentiates each sample's value, but this averages over the batch",
                    span=n.span if n.span.line else what.span,
                    hint="take the expectation outside: E[norm(grad(D(x), x))^2]",
                )
            if isinstance(n, ir.Apply):
                self.gradient_is_per_sample(self.networks[n.network], n.span if n.span.line else what.span)
        sample = self.samples[where.id]
        self.used.add(where.id)
        at = ir.Sample(sample.shape, True, where.id, where.span)
        if where.id not in ir.samples(body):
            raise GameCheckError(
                f"this does not depend on '{where.id}', so its gradient with respect to '{where.id}' is zero",
                span=what.span,
                hint=f"grad(EXPR, {where.id}) differentiates an expression in which {where.id} occurs",
            )
        var = self.gradient_variable(at, where.span)
        return ir.gradient(ir.replace_sample(body, where.id, var), var.name, at, node.span)

    def gradient_variable(self, at: ir.Node, span: Span) -> ir.Var:
        """The variable a gradient binds: named so that no other can capture it."""
        self.gradients += 1
        return ir.Var(at.shape, at.sampled, f"grad#{self.gradients}", span)

    def gradient_is_per_sample(self, net: NetworkInfo, span: Span) -> None:
        """With batch norm, one example's output depends on the whole batch: no per-sample gradient."""
        if network_footprint(net).couples_examples:
            raise GameCheckError(
                f"network '{net.name}' uses batch norm, so its output for one sample depends on the whole batch "
                "and grad has no per-sample gradient to give",
                span=span,
                hint=f"build '{net.name}' without batch norm: {without_batch_norm(net)}",
            )

    def network_call(self, node: ast.Call, net: NetworkInfo) -> ir.Node:
        (arg,) = self.positional(node, 1, f"network '{net.name}'")
        if arg.shape != net.input:
            raise GameCheckError(
                f"network '{net.name}' takes {show_shape(net.input)}, but it is applied to {show_shape(arg.shape)}",
                span=node.args[0].span,
                hint=f"'{net.name}' is declared on line {net.decl.span.line} as {_arrow_text(net)}",
            )
        self.batch_norm_needs_a_batch(net, arg, node.span)
        return ir.apply(net.name, net.output, arg, node.span)

    def batch_norm_needs_a_batch(self, net: NetworkInfo, arg: ir.Node, span: Span) -> None:
        """A value that does not vary over the batch reaches a network as a batch of one, and
        batch norm cannot normalise a channel that holds a single value."""
        values = network_footprint(net).norm_values
        if not arg.sampled and 0 < values < 2:
            raise GameCheckError(
                f"network '{net.name}' uses batch norm, which needs several values per channel, but it is applied "
                "to a value that does not vary over the batch (a batch of one)",
                span=span,
                hint="apply it to sampled values, such as G(z) with latent z, or build it with "
                + without_batch_norm(net),
            )

    def part_call(self, node: ast.Call) -> ir.Node:
        divergence = self.resolve_divergence(node.func)
        if divergence is None:
            if node.func.id in self.decls:
                raise GameCheckError(
                    f"'{node.func.id}' is {_describe_decl(self.decls[node.func.id])}, so it has no parts",
                    span=node.func.span,
                    hint="only divergences have parts: NAME.g1(t) and NAME.g2(t)",
                )
            raise self.undefined(node.func)
        part = node.attr.id
        if part not in PARTS:
            raise GameCheckError(
                f"a divergence has parts g1 and g2, not '{part}'",
                span=node.attr.span,
                hint=close_match(part, PARTS) or f"write {node.func.id}.g1(...) or {node.func.id}.g2(...)",
            )
        (arg,) = self.positional(node, 1, f"'{node.callee}'")
        return ir.substitute(divergence.parts[part], "t", arg)

    def divergence_call(self, node: ast.Call, divergence: _Divergence) -> ir.Node:
        given: dict[str, ast.Expr] = {}
        for param, arg in zip(DIVERGENCE_ARGS, node.args):
            given[param] = arg
        if len(node.args) > len(DIVERGENCE_ARGS):
            raise GameCheckError(
                "a divergence takes three arguments: critic, real and fake", span=node.args[len(DIVERGENCE_ARGS)].span
            )
        for kw in node.kwargs:
            if kw.name not in DIVERGENCE_ARGS:
                raise GameCheckError(
                    f"a divergence has no argument '{kw.name}'",
                    span=kw.span,
                    hint=close_match(kw.name, DIVERGENCE_ARGS) or "its arguments are critic, real and fake",
                )
            if kw.name in given:
                raise GameCheckError(f"argument '{kw.name}' is given twice", span=kw.span)
            given[kw.name] = kw.value
        for param in DIVERGENCE_ARGS:
            if param not in given:
                raise GameCheckError(
                    f"the divergence '{node.func.id}' needs the argument '{param}'",
                    span=node.span,
                    hint=f"write {node.func.id}(critic=D, real=x, fake=G(z))",
                )
        critic_expr = given["critic"]
        if not (isinstance(critic_expr, ast.Name) and isinstance(self.decls.get(critic_expr.id), ast.NetworkDecl)):
            applied = (
                isinstance(critic_expr, ast.Call)
                and critic_expr.attr is None
                and isinstance(self.decls.get(critic_expr.func.id), ast.NetworkDecl)
            )
            raise GameCheckError(
                "the critic of a divergence must be the name of a network",
                span=critic_expr.span,
                hint=f"pass the network itself, critic={critic_expr.func.id}; the divergence applies it to real and fake"
                if applied
                else "declare it with: network D = mlp(...)",
            )
        critic = self.networks[critic_expr.id]
        self.used.add(critic.name)
        if critic.output != ():
            raise GameCheckError(
                f"the critic '{critic.name}' must output a number, but it outputs {show_shape(critic.output)}",
                span=critic_expr.span,
                hint=f"declare it with output size 1, e.g. {critic.builder}(... -> 1)",
            )
        sides = {}
        for side in ("real", "fake"):
            value = self.expr(given[side])
            if value.shape != critic.input:
                raise GameCheckError(
                    f"the critic '{critic.name}' takes {show_shape(critic.input)}, but '{side}' is {show_shape(value.shape)}",
                    span=given[side].span,
                    hint=f"'{critic.name}' is declared on line {critic.decl.span.line} as {_arrow_text(critic)}",
                )
            self.batch_norm_needs_a_batch(critic, value, given[side].span)
            sides[side] = ir.apply(critic.name, (), value, given[side].span)
        real = sides["real"].arg
        if any(s.kind == "data" and s.shape == real.shape for s in self.samples.values()):
            # samples of the data and of the model; a packed critic's inputs (PacGAN's concat(x1, x2))
            # are not: comparison.infer then finds the generator's own samples
            self.comparisons.append((real, sides["fake"].arg))
        g1 = ir.substitute(divergence.parts["g1"], "t", sides["fake"])
        g2 = ir.substitute(divergence.parts["g2"], "t", sides["real"])
        return ir.binary("-", ir.expectation(g1, node.span), ir.expectation(g2, node.span), node.span)


class _PartChecker:
    """Checks a part body `g1(t) = ...`: a function of its one variable, numbers and built-ins."""

    def __init__(self, part: ast.Part):
        self.part = part
        self.variable = part.params[0]

    def run(self) -> ir.Node:
        body = self.expr(self.part.body)
        if body.shape:
            raise GameCheckError(f"'{self.part.name}' must return a number", span=self.part.body.span)
        return ir.substitute(body, self.variable, ir.Var((), False, "t"))

    def expr(self, node: ast.Expr) -> ir.Node:
        match node:
            case ast.Number(value=v):
                return ir.const(v, node.span)
            case ast.Name(id=name) if name == self.variable:
                return ir.Var((), False, name, node.span)
            case ast.Name(id=name):
                raise GameCheckError(
                    f"'{self.part.name}' is a function of '{self.variable}' alone, but it uses '{name}'",
                    span=node.span,
                    hint=f"divergence parts may use only {self.variable}, numbers and built-in functions",
                )
            case ast.Unary(op=op, operand=x):
                inner = self.expr(x)
                return ir.neg(inner, node.span) if op == "-" else inner
            case ast.Binary(op=op, left=a, right=b):
                return ir.binary(op, self.expr(a), self.expr(b), node.span)
            case ast.Call(func=func, attr=None) if func.id in FUNCTIONS and FUNCTIONS[func.id].kind in SCALAR_KINDS:
                return ir.fn(func.id, tuple(self.args(node, func.id, FUNCTIONS[func.id].arity)), node.span)
            case ast.Call(func=func, attr=None) if func.id in FUNCTIONS and FUNCTIONS[func.id].kind == "gradient":
                raise GameCheckError(
                    f"'{self.part.name}' is a function of one real variable; grad cannot be used in it",
                    span=node.span,
                    hint="put gradient penalties in a player's objective, e.g. "
                    "maximizes gan(critic=D, real=x, fake=G(z)) - 5 * E[norm(grad(D, x))^2]",
                )
            case ast.Call():
                raise GameCheckError(
                    f"'{self.part.name}' is a function of one real variable; '{node.callee}' cannot be used in it",
                    span=node.span,
                    hint="use elementwise functions such as log, exp, softplus, sigmoid, tanh",
                )
            case ast.Index() | ast.Expect():
                raise GameCheckError(
                    f"'{self.part.name}' is a function of one real variable; it cannot index or take expectations",
                    span=node.span,
                )
            case ast.Vector():
                raise GameCheckError(
                    f"'{self.part.name}' is a function of one real variable; it returns a number, not a vector",
                    span=node.span,
                )
        raise AssertionError(node)

    def args(self, node: ast.Call, name: str, count: int) -> list[ir.Node]:
        if node.kwargs:
            raise GameCheckError(f"'{name}' takes no keyword arguments", span=node.kwargs[0].span)
        if len(node.args) != count:
            plural = "argument" if count == 1 else "arguments"
            raise GameCheckError(
                f"'{name}' takes {count} {plural}, got {len(node.args)}",
                span=node.args[count].span if len(node.args) > count else node.span,
            )
        return [self.expr(a) for a in node.args]


# ---- helpers --------------------------------------------------------------------------------


def _number(value: ast.Value, what: str) -> float:
    if not isinstance(value, ast.NumberValue):
        raise GameCheckError(f"{what} must be numbers", span=value.span)
    return float(value.value)


def _override_error(alias: str, target: str, message: str, hint: str | None, value: bool) -> UsageError:
    """An error in `--set divergence.ALIAS=TARGET`, pointing at the target or at the alias."""
    text = f"divergence.{alias}={target}"
    start, end = (len(text) - len(target) + 1, len(text) + 1) if value else (12, 12 + len(alias))
    return UsageError(message, span=Span(1, start, 1, end), hint=hint, source=Source("--set", text))


def _describe_decl(decl) -> str:
    return {
        ast.ParamDecl: "a parameter",
        ast.NetworkDecl: "a network",
        ast.LetDecl: "a let",
        ast.DivergenceDecl: "a divergence",
        ast.AliasDecl: "a divergence",
    }.get(type(decl)) or ("data" if getattr(decl, "kind", "") == "data" else "a latent variable")


def _arrow_text(net: NetworkInfo) -> str:
    shape: Callable = lambda s: str(s[0]) if len(s) == 1 else "[" + ", ".join(map(str, s)) + "]"  # noqa: E731
    src, dst = net.args.get("io", ((1,), (1,)))
    return f"{net.builder}({shape(src)} -> {shape(dst)}, ...)"


def _conjunction(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _unaveraged_samples(node: ir.Node) -> set[str]:
    """The sampled variables that some path from `node` reaches without passing an E[...]."""
    found, stack, seen = set(), [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen or isinstance(current, ir.Mean):
            continue
        seen.add(id(current))
        if isinstance(current, ir.Sample):
            found.add(current.name)
        stack.extend(current.children())
    return found


def _sampled_span(expr: ast.Expr, checker: _Checker) -> Span:
    """The smallest sub-expression that is sampled outside any E[...]: the one to wrap."""
    node = expr
    while True:
        match node:
            case ast.Binary(left=a, right=b):
                sampled = [c for c in (a, b) if checker.expr(c).sampled]
                if len(sampled) != 1:
                    return node.span
                node = sampled[0]
            case ast.Unary(operand=x):
                node = x
            case _:
                return node.span

