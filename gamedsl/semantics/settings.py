"""Run settings: defaults, then the game's `solve { }` block, then the command line.

One schema describes every key. The file's values are checked with `gamedsl check`, with
positions; `--set key=value` values are parsed by the same grammar and checked by the same
code, and their errors point into the argument itself. Solver parameters written in the
file follow the solver when `--solver` switches to one that takes them (consensus ->
smoothing keeps gamma) and are dropped with a note otherwise; `--set solver.X` always
applies, and fails if the chosen solver has no X.

Some settings are per player: `optimizer.P = adam(lr=4e-4)` gives player P an optimizer of
its own (TTUR), `optimizer.P.lr = 4e-4` changes one parameter of P's optimizer (the default
one, unless P has its own), `critic_steps.P = 5` and `average.P = 0.999`. Whether P is a
player is checked with the game (semantics/runnable.py), like every other name a setting
refers to. A schedule's `until` left at 0 is the run's last step, resolved here and recorded.

The schema, the solve-block checker and the merging of the command line stay in one module,
in semantics/ beside the checker that calls it: `--set` values are checked by the very
functions that check the block (`_check_setting`, `_method`), against the same `KEYS`, so
splitting them would only move shared private helpers across a module boundary. Like the rest
of semantics/, it imports no torch (the solvers' declarations are read without it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import solvers
from gamedsl.errors import GameCheckError, GameSyntaxError, Source, Span, UsageError
from gamedsl.library.signature import Choice, Int, Kind, describe_value, suggest
from gamedsl.syntax import ast


@dataclass(frozen=True)
class Key:
    kind: Kind | None  # None for solver/optimizer, which are method calls
    default: Any
    doc: str


class _Device(Kind):
    label = "auto, cpu, cuda or cuda:N"

    def convert(self, value):
        name = value.name if isinstance(value, ast.IdentValue) else value.value if isinstance(value, ast.StringValue) else None
        if name in ("auto", "cpu", "cuda") or (name or "").startswith("cuda:") and name[5:].isdigit():
            return name
        raise self.wrong(value)


class _Switch(Kind):
    """auto, true or false (`compile = true` parses as a boolean, `auto` as a name)."""

    label = "auto, true or false"

    def convert(self, value):
        if isinstance(value, ast.BoolValue):
            return "true" if value.value else "false"
        name = value.name if isinstance(value, ast.IdentValue) else value.value if isinstance(value, ast.StringValue) else None
        if name in ("auto", "true", "false"):
            return name
        raise self.wrong(value)


class _Decay(Kind):
    """An averaging decay d: avg <- d avg + (1 - d) x, strictly between 0 and 1."""

    label = "a decay between 0 and 1 (exclusive), such as 0.999"
    example = "each step moves the average (1 - d) of the way to the parameters: d = 0.999 averages about 1,000 steps"

    def convert(self, value):
        if isinstance(value, ast.NumberValue) and 0 < value.value < 1:
            return float(value.value)
        raise self.wrong(value)


MAX_THREADS = 1024  # far beyond any machine's cores; more only exhausts the process's threads
DEFAULT_MEMORY_LIMIT = 16  # GiB: catches sizes wrong by orders of magnitude; the catalog's largest game (celeba_resnet) needs 11.5
MAX_MEMORY_LIMIT = 2**20  # GiB (1 PiB): keeps every size PyTorch is asked for below 2^63

KEYS: dict[str, Key] = {
    "solver": Key(None, "simga", "the solver, e.g. consensus(gamma=10); see `gamedsl solvers`"),
    "optimizer": Key(None, "sgd", "the optimizer, e.g. rmsprop(lr=1e-4, alpha=0.9, eps=1e-10)"),
    "steps": Key(Int(0), 1000, "number of solver steps"),
    "batch": Key(Int(1), 64, "samples of each data and latent variable per step"),
    "seed": Key(Int(0), 0, "seed of parameter initialisation and of every sampler"),
    "device": Key(_Device(), "auto", "auto picks CUDA when available, else the CPU"),
    "dtype": Key(Choice(choices=("float32", "float64")), "float32", "floating-point precision"),
    "threads": Key(
        Int(0, maximum=MAX_THREADS),
        0,
        "CPU threads for PyTorch; 0: one for games under 100k parameters, else the idle cores (docs/scaling.md); "
        "a resumed run keeps the count it started with",
    ),
    "shards": Key(Int(0), 0, "independent sample streams the global batch is cut into; 0: one per process"),
    "eval_samples": Key(Int(1), 2500, "samples drawn for the end-of-run metrics (2-D mixtures: PacGAN protocol)"),
    "log_every": Key(Int(1), 100, "TensorBoard scalars every N steps"),
    "image_every": Key(Int(0), 1000, "pictures (2-D densities, sample grids) and their metrics every N steps; 0: never"),
    "checkpoint_every": Key(Int(0), 1000, "a checkpoint every N steps (and always at the end); 0: only at the end"),
    "spectrum_every": Key(Int(0), 0, "eigenvalues of v' and w' every N steps (expensive); 0: never"),
    "spectrum_batches": Key(Int(1, maximum=10_000), 10, "minibatches the Jacobian is averaged over for spectra (at most 10,000)"),
    "memory_limit": Key(
        Int(1, maximum=MAX_MEMORY_LIMIT),
        DEFAULT_MEMORY_LIMIT,
        "GiB of memory a run may be estimated to need (parameters with their optimizer state, a batch's "
        "activations, the end-of-run samples); `gamedsl check` refuses a game beyond it",
    ),
    "average_start": Key(
        Int(0), 0, "the step the parameter averages (average.P) start at; before it they follow the parameters"
    ),
    "checkpoint_keep": Key(Int(0, maximum=1_000_000), 0, "keep the last N checkpoints in checkpoints/ besides checkpoint.pt"),
    "checkpoint_history": Key(Int(0), 0, "keep one checkpoint every N steps in checkpoints/ (with checkpoint_keep: both)"),
    "compile": Key(
        _Switch(),
        "auto",
        "take each solver step as one compiled graph (torch.compile); auto: when the run is long enough to repay "
        "the compilation (docs/performance.md)",
    ),
}

METHOD_KEYS = {"solver": solvers.SOLVERS, "optimizer": solvers.optimizers.OPTIMIZERS}

# settings written once per player, `KEY.PLAYER = value` (per-player optimizers have their own path)
PLAYER_KEYS: dict[str, Key] = {
    "critic_steps": Key(
        Int(1, maximum=1000), 1, "player P's steps for each step of the others (WGAN's n_critic); simga and altga"
    ),
    "average": Key(
        _Decay(), None, "decay d of an exponential moving average of P's parameters (Yazici et al. 2019), used for "
        "metrics, pictures and samples"
    ),
}
SCHEDULED = ("linear", "cosine")  # schedules that end at `until` (0: the run's last step)


@dataclass(frozen=True)
class Origin:
    """Where the command line gave a setting: a `--set` argument (and the value's place in
    it) or a flag. Errors found once every setting is merged point there."""

    source: Source | None  # the --set argument; None for a flag
    span: Span | None
    flag: str | None = None  # "--batch"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the game. Saved as the run's config.json."""

    solver: str
    solver_params: dict[str, Any]
    optimizer: str
    optimizer_params: dict[str, Any]
    steps: int
    batch: int
    seed: int
    device: str
    dtype: str
    threads: int
    shards: int
    eval_samples: int
    log_every: int
    image_every: int
    checkpoint_every: int
    spectrum_every: int
    spectrum_batches: int
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    compile: str = "auto"
    average_start: int = 0
    checkpoint_keep: int = 0
    checkpoint_history: int = 0
    player_optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # P -> {"name", "params"}
    critic_steps: dict[str, int] = field(default_factory=dict)
    average: dict[str, float] = field(default_factory=dict)
    divergences: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, repr=False)  # the command line's settings

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("notes")
        out.pop("origins")
        return out

    def make_solver(self) -> solvers.Solver:
        return solvers.get(self.solver, **self.solver_params)

    def make_optimizer(self):
        return solvers.optimizers.get(self.optimizer, **self.optimizer_params)

    def make_optimizers(self, players: list[str]):
        """The default optimizer, or a mapping with one for each player when some have their own."""
        if not self.player_optimizers:
            return self.make_optimizer()
        own = {p: solvers.optimizers.get(o["name"], **o["params"]) for p, o in self.player_optimizers.items()}
        return {p: own[p] if p in own else self.make_optimizer() for p in players}

    def schedule_notes(self) -> list[str]:
        """A note for each learning-rate schedule that does not fit the run's steps: one that
        ends or drops after the last step, or one that ended before it (the rest of the run
        goes at its final rate; a resumed run keeps the schedule it started with)."""
        notes = []
        for key, (name, params) in [
            ("optimizer", (self.optimizer, self.optimizer_params)),
            *((f"optimizer.{p}", (o["name"], o["params"])) for p, o in self.player_optimizers.items()),
        ]:
            schedule = params.get("schedule")
            end = params.get("until") if schedule in SCHEDULED else params.get("at") if schedule == "step" else None
            if not end or end == self.steps:
                continue
            what = "drops" if schedule == "step" else "ends"
            if end > self.steps:
                notes.append(f"{key} = {name}: its {schedule} schedule {what} at step {end:,}, after the run's {self.steps:,} steps")
            elif schedule in SCHEDULED:
                notes.append(f"{key} = {name}: its {schedule} schedule ends at step {end:,}; the run's last "
                             f"{self.steps - end:,} steps go at its final rate")  # fmt: skip
        return notes

    def optimizer_text(self, player: str | None = None) -> str:
        """`adam(lr=0.0004, beta1=0)`: the optimizer of `player` (the default one for None)."""
        own = self.player_optimizers.get(player) if player else None
        name, params = (own["name"], own["params"]) if own else (self.optimizer, self.optimizer_params)
        if not params:
            return name
        return name + "(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) + ")"


def python_value(value: ast.Value) -> Any:
    """A plain value for method parameters: numbers, booleans, names, strings."""
    match value:
        case ast.NumberValue():
            return int(value.value) if value.is_int else float(value.value)
        case ast.BoolValue(value=b):
            return b
        case ast.IdentValue(name=name):
            return name
        case ast.StringValue(value=s):
            return s
    raise GameCheckError(
        f"expected a number, true/false or a name, got {describe_value(value)}",
        span=value.span,
        hint="solver and optimizer parameters are single values, such as gamma=10",
    )


def _method(key: str, value: ast.Value) -> tuple[str, dict[str, Any]]:
    """`consensus(gamma=10)` or `consensus` -> ("consensus", {"gamma": 10.0}), validated."""
    registry = METHOD_KEYS[key]
    if isinstance(value, ast.IdentValue):
        name, args, name_span = value.name, (), value.span
    elif isinstance(value, ast.CallValue):
        name, args, name_span = value.name, value.args, value.name_span
    else:
        raise GameCheckError(f"expected a {key} such as {_example(key)}, got {describe_value(value)}", span=value.span)
    if name not in registry.available():
        raise GameCheckError(f"unknown {key} '{name}'", span=name_span, hint=suggest(name, registry.available(), f"{key}s"))
    params = {}
    for arg in args:
        if arg.name is None:
            raise GameCheckError(f"{key} parameters are given by name", span=arg.span, hint=f"for example {_example(key)}")
        if arg.name in params:
            raise GameCheckError(
                f"parameter '{arg.name}' is given twice", span=arg.span, hint="give each parameter once"
            )
        params[arg.name] = _method_param(key, name, arg.name, arg.value, arg.value.span, arg.span)
    return name, params


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a name"}


def _method_param(
    key: str, method: str, param: str, value: ast.Value, span: Span, param_span: Span | None = None, default: bool = False
) -> Any:
    """Check one parameter of a solver or optimizer: `span` is its value, `param_span` its name.

    `default` says that the method was not chosen in the file (`solver.gamma = 1` alone)."""
    registry = METHOD_KEYS[key]
    specs = {spec.name: spec for spec in registry.describe(method)}
    if param not in specs:
        takers = [name for name in registry.available() if param in {spec.name for spec in registry.describe(name)}]
        raise GameCheckError(
            f"{key} '{method}' has no parameter '{param}'" + (f" ({method} is the default {key})" if default else ""),
            span=param_span or span,
            hint=suggest(param, specs, "its parameters")
            or (f"{key}s that take '{param}': " + ", ".join(takers) if takers else f"{key} '{method}' takes no parameters"),
        )
    spec, owner = specs[param], f"{key} '{method}'"
    plain = python_value(value)
    try:
        typed = spec.coerce(plain, owner)
    except solvers.SolverError as exc:
        what = _TYPE_WORDS.get(spec.type, "another kind of value")
        message = f"{owner}: parameter '{param}' must be {what}, got {describe_value(value)}"
        raise GameCheckError(message, span=span, hint=exc.hint) from None
    try:
        return spec.check(typed, owner)
    except solvers.SolverError as exc:  # outside the declared range
        raise GameCheckError(exc.message, span=span, hint=exc.hint) from None


def _names_method(registry, value: ast.Value) -> bool:
    """Whether `value` is a method of `registry`, called or named: `adam(lr=1)`, `adam`."""
    return isinstance(value, ast.CallValue) or isinstance(value, ast.IdentValue) and value.name in registry.available()


def _check_method(key: str, settings: dict[str, ast.Setting], player: str | None = None) -> None:
    """Build the solver or optimizer that a solve block describes (player P's own optimizer
    for `player`), so that constraints between values (a negative gamma, a step schedule
    without its step) are reported by `gamedsl check` too."""
    registry = METHOD_KEYS[key]
    prefix = key if player is None else f"{key}.{player}"
    method = settings.get(prefix)
    inherits = player is not None and method is None  # P changes parameters of the default optimizer
    source = method or (settings.get(key) if inherits else None)
    name, params = _method(key, source.value) if source else (KEYS[key].default, {})
    spans = {arg.name: arg.value.span for arg in getattr(method.value, "args", ()) if arg.name} if method else {}
    if inherits:  # P's parameters start from the default's, and may override them
        params.update(_dotted_params(key, key, name, settings, {}))
    params.update(_dotted_params(key, prefix, name, settings, spans))
    if key == "optimizer":
        steps = settings.get("steps")
        complete_schedule(params, KEYS["steps"].kind.convert(steps.value) if steps else KEYS["steps"].default)
    try:
        registry.get(name, **params)
    except solvers.SolverError as exc:
        named = [param for param in spans if f"{param} " in exc.message or f"'{param}'" in exc.message]
        span = spans[named[0]] if named else method.value.span if method else next(iter(settings.values())).span
        raise GameCheckError(exc.message, span=span, hint=exc.hint) from None


def _dotted_params(
    key: str, prefix: str, name: str, settings: dict[str, ast.Setting], spans: dict[str, Span]
) -> dict[str, Any]:
    """The parameters a block gives as `PREFIX.PARAM = v` (`optimizer.lr`, `optimizer.D.lr`), checked
    against method `name`; one already in `spans` (the call's own arguments) is an error."""
    params = {}
    for setting_key, setting in settings.items():
        rest = setting_key[len(prefix) + 1 :] if setting_key.startswith(prefix + ".") else ""
        if not rest or "." in rest or prefix == key and _player_target(setting_key, setting.value) is not None:
            continue
        if rest in spans:
            raise GameCheckError(
                f"'{setting_key}' repeats the parameter {rest} of {prefix} = {name}(...)",
                span=setting.span,
                hint=f"it is given on line {spans[rest].line}; keep one of the two",
            )
        params[rest] = _method_param(key, name, rest, setting.value, setting.value.span)
        spans[rest] = setting.value.span
    return params


def _example(key: str) -> str:
    return "consensus(gamma=10)" if key == "solver" else "rmsprop(lr=1e-4)"


def check_settings(settings: tuple[ast.Setting, ...]) -> dict[str, ast.Setting]:
    """Validate a solve block; return its settings by key."""
    seen: dict[str, ast.Setting] = {}
    for setting in settings:
        if setting.key in seen:
            raise GameCheckError(
                f"'{setting.key}' is set twice", span=setting.span, hint=f"it is first set on line {seen[setting.key].span.line}"
            )
        seen[setting.key] = setting
    for setting in settings:
        _check_setting(setting.key, setting.value, seen, setting.span)
    for key in METHOD_KEYS:
        _check_method(key, seen)
    own = {target[1] for key, s in seen.items() if (target := _player_target(key, s.value)) and target[0] == "optimizer"}
    for player in sorted(own):
        _check_method("optimizer", seen, player)
    return seen


def complete_schedule(params: dict[str, Any], steps: int) -> None:
    """A linear or cosine schedule without `until` ends at the run's last step."""
    if params.get("schedule") in SCHEDULED and not params.get("until"):
        params["until"] = max(steps, 1)


def _player_target(key: str, value: ast.Value) -> tuple[str, str, str] | None:
    """(head, player, parameter) of a per-player setting: ("optimizer", P, "") for
    `optimizer.P = adam(...)` (a value naming an optimizer), ("optimizer", P, "lr") for
    `optimizer.P.lr = 1e-3`, ("average", P, "") for `average.P = 0.999`; None for others."""
    parts = key.split(".")
    if parts[0] in PLAYER_KEYS and len(parts) == 2:
        return parts[0], parts[1], ""
    if parts[0] == "optimizer" and len(parts) == 3:
        return "optimizer", parts[1], parts[2]
    if parts[0] == "optimizer" and len(parts) == 2 and _names_method(METHOD_KEYS["optimizer"], value):
        return "optimizer", parts[1], ""
    return None


def _check_setting(key: str, value: ast.Value, block: dict[str, ast.Setting], span: Span) -> Any:
    head, _, rest = key.partition(".")
    target = _player_target(key, value)
    key_span = Span(span.line, span.column, span.line, span.column + len(key))
    if target is not None and target[0] in PLAYER_KEYS:
        return PLAYER_KEYS[head].kind.convert(value)
    if target is not None and not target[2]:
        return _method("optimizer", value)
    if target is not None:
        own = block.get(f"optimizer.{target[1]}")
        method = own or block.get("optimizer")
        name = _method("optimizer", method.value)[0] if method else KEYS["optimizer"].default
        return _method_param("optimizer", name, target[2], value, value.span, key_span, default=method is None)
    if head in METHOD_KEYS and rest and "." not in rest:
        method = block.get(head)
        name = _method(head, method.value)[0] if method else KEYS[head].default
        return _method_param(head, name, rest, value, value.span, key_span, default=method is None)
    if head in METHOD_KEYS:
        return _method(head, value)
    if key not in KEYS or rest:
        raise GameCheckError(
            f"unknown setting '{key}'",
            span=span,
            hint=suggest(key, SETTING_FORMS, "settings"),
        )
    return KEYS[key].kind.convert(value)


SETTING_FORMS = [*KEYS, "solver.PARAM", "optimizer.PARAM", "optimizer.PLAYER", "optimizer.PLAYER.PARAM"] + [
    f"{key}.PLAYER" for key in PLAYER_KEYS
]


# ---- the command line -------------------------------------------------------------------


@dataclass(frozen=True)
class Override:
    """One `--set key=value`, parsed."""

    key: str
    value: ast.Value
    source: Source


def parse_override(text: str) -> Override:
    from gamedsl.syntax.parser import parse_value

    source = Source("--set", text)
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError("--set takes key=value", span=Span.point(1, 1), source=source, hint="for example --set solver.gamma=1")
    offset = len(text) - len(raw.lstrip()) + 1
    try:
        value = parse_value(raw.strip(), source, column=offset)
    except GameSyntaxError as exc:  # a --set argument is command-line usage, not a .game file
        raise UsageError(exc.message, span=exc.span, source=source, hint=exc.hint) from None
    head, _, rest = key.partition(".")
    one_name = bool(rest) and "." not in rest
    allowed = (
        head in KEYS and not rest
        or head == "solver" and (not rest or one_name)
        or head == "optimizer" and (not rest or rest.count(".") <= 1)
        or head in PLAYER_KEYS and one_name
        or head == "divergence" and one_name
    )
    if not allowed:
        raise UsageError(
            f"unknown setting '{key}'",
            span=Span(1, 1, 1, len(key) + 1),
            source=source,
            hint=suggest(key, SETTING_FORMS + ["divergence.NAME"], "settings"),
        )
    return Override(key, value, source)


def divergence_overrides(overrides: list[Override]) -> dict[str, str]:
    out = {}
    for o in overrides:
        if o.key.startswith("divergence."):
            if not isinstance(o.value, ast.IdentValue):
                raise UsageError("a divergence is given by name", span=o.value.span, source=o.source, hint="for example --set divergence.objective=kl")
            out[o.key.split(".", 1)[1]] = o.value.name
    return out


def resolve(settings: dict[str, ast.Setting], overrides: list[Override], flags: dict[str, Any]) -> RunConfig:
    """Merge defaults, the file's solve block, `--set` overrides and explicit flags (last wins)."""
    values = {key: spec.default for key, spec in KEYS.items() if spec.kind is not None}
    methods = {key: (KEYS[key].default, {}) for key in METHOD_KEYS}
    per_player: dict[str, dict[str, Any]] = {key: {} for key in PLAYER_KEYS}
    # players' own optimizers: P -> (name, or None for the default one; its parameters)
    own: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for key, setting in settings.items():
        head, _, rest = key.partition(".")
        target = _player_target(key, setting.value)
        if target is not None and target[0] == "optimizer" and not target[2]:
            own[target[1]] = _method("optimizer", setting.value)
        elif head in METHOD_KEYS and not rest:
            methods[head] = _method(head, setting.value)
    # method parameters, checked against the method finally chosen: method (key or key.P) ->
    # param -> (value, the span of `name=` or of the key, the --set it came from or None)
    explicit: dict[str, dict[str, tuple[ast.Value, Span, Override | None]]] = {key: {} for key in METHOD_KEYS}
    for key, setting in settings.items():
        head, _, rest = key.partition(".")
        target = _player_target(key, setting.value)
        if target is not None and target[0] in PLAYER_KEYS:
            per_player[head][target[1]] = _check_setting(key, setting.value, settings, setting.span)
        elif target is not None and target[2]:
            own.setdefault(target[1], (None, {}))
            explicit.setdefault(f"optimizer.{target[1]}", {})[target[2]] = (setting.value, setting.value.span, None)
        elif head in METHOD_KEYS and rest and target is None:
            methods[head][1][rest] = _check_setting(key, setting.value, settings, setting.span)
        elif head not in METHOD_KEYS:
            values[key] = _check_setting(key, setting.value, settings, setting.span)
    notes: list[str] = []
    file_methods = dict(methods)
    origins: dict[str, Origin] = {}
    for o in overrides:
        head, _, rest = o.key.partition(".")
        target = _player_target(o.key, o.value)
        try:
            if head == "divergence":
                continue
            if target is not None and target[0] in PLAYER_KEYS:
                per_player[head][target[1]] = PLAYER_KEYS[head].kind.convert(o.value)
            elif target is not None and not target[2] or head in METHOD_KEYS and not rest:
                method = o.key if target else head
                name = _method("optimizer" if target else head, o.value)[0]
                if target:
                    own[target[1]] = (name, {})
                else:
                    methods[head] = (name, {})
                explicit.setdefault(method, {})  # parameters set before stay: they apply to the method finally chosen
                for arg in getattr(o.value, "args", ()):
                    explicit[method][arg.name] = (arg.value, arg.span, o)
                    origins[f"{method}.{arg.name}"] = Origin(o.source, arg.value.span)
            elif target is not None:
                own.setdefault(target[1], (None, {}))
                method = f"optimizer.{target[1]}"
                explicit.setdefault(method, {})[target[2]] = (o.value, Span(1, 1, 1, len(o.key) + 1), o)
            elif head in METHOD_KEYS:
                explicit[head][rest] = (o.value, Span(1, 1, 1, len(o.key) + 1), o)
            else:
                values[o.key] = KEYS[o.key].kind.convert(o.value)
            origins[o.key] = Origin(o.source, o.value.span)
        except GameCheckError as exc:
            raise UsageError(exc.message, span=exc.span, source=o.source, hint=exc.hint) from None
    for key, value in flags.items():
        if value is None:
            continue
        origins[key] = Origin(None, None, "--" + key.replace("_", "-"))
        if key in METHOD_KEYS:
            if value not in METHOD_KEYS[key].available():
                raise UsageError(
                    f"unknown {key} '{value}'", hint=suggest(value, METHOD_KEYS[key].available(), f"{key}s")
                )
            methods[key] = (value, {})
        else:
            values[key] = _check_flag(key, value)
    resolved = {}
    for key, registry in METHOD_KEYS.items():
        name = methods[key][0]
        accepted = {spec.name for spec in registry.describe(name)}
        params = {}
        for param, value in file_methods[key][1].items():
            if param in accepted:
                params[param] = value
            else:
                notes.append(f"{key}.{param}={value} from the game file does not apply to {name}; ignored")
        resolved[key] = _finish(key, name, params, explicit[key], values["steps"])
    player_optimizers = {}
    for player, (name, params) in own.items():
        if name is None:  # P changes parameters of the default optimizer
            name, params = resolved["optimizer"][0], dict(resolved["optimizer"][1])
        name, params = _finish("optimizer", name, params, explicit.get(f"optimizer.{player}", {}), values["steps"])
        player_optimizers[player] = {"name": name, "params": params}
    config = RunConfig(
        solver=resolved["solver"][0],
        solver_params=resolved["solver"][1],
        optimizer=resolved["optimizer"][0],
        optimizer_params=resolved["optimizer"][1],
        player_optimizers=player_optimizers,
        critic_steps=per_player["critic_steps"],
        average=per_player["average"],
        divergences=divergence_overrides(overrides),
        notes=tuple(notes),
        origins=origins,
        **values,
    )
    return replace(config, notes=config.notes + tuple(config.schedule_notes()))


def _finish(key: str, name: str, params: dict[str, Any], explicit: dict, steps: int) -> tuple[str, dict[str, Any]]:
    """A method's parameters with the explicit ones checked against it (errors where they
    were written: the file, or the `--set` argument) and a schedule completed; validated."""
    registry = METHOD_KEYS[key]
    params = dict(params)
    for param, (value, key_span, o) in explicit.items():
        try:
            params[param] = _method_param(key, name, param, value, value.span, key_span)
        except GameCheckError as exc:
            if o is None:
                raise
            raise UsageError(exc.message, span=exc.span, source=o.source, hint=exc.hint) from None
    if key == "optimizer":
        complete_schedule(params, steps)
    try:
        registry.get(name, **params)
    except solvers.SolverError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    return name, params


def _check_flag(key: str, value: Any) -> Any:
    """Flags arrive typed from typer; check the ones with a vocabulary."""
    kind = KEYS[key].kind
    if isinstance(kind, (Choice, _Device)):
        try:
            kind.convert(ast.IdentValue(str(value)))
        except GameCheckError as exc:
            raise UsageError(f"--{key}: {exc.message}", hint=exc.hint) from None
    elif isinstance(kind, Int) and kind.minimum is not None and value < kind.minimum:
        raise UsageError(f"--{key} must be at least {kind.minimum}, got {value}")
    elif isinstance(kind, Int) and kind.maximum is not None and value > kind.maximum:
        raise UsageError(f"--{key} must be at most {kind.maximum}, got {value}")
    return value
