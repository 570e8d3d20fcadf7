"""The action catalog (``actions.yaml``): parsing, validation and safe expressions.

Expressions (an action's ``eligibility`` and a ``value`` given as text) are parsed with
:mod:`ast` and evaluated by walking the tree over NumPy arrays: nothing is ever passed to
``eval``. Allowed: numbers, ``true``/``false``, profile feature names, ``+ - * /``, unary
``-``, comparisons, ``and``/``or``/``not``, and the functions ``min``, ``max``, ``abs``.
A comparison with an empty (null) feature is false.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nba.contact_policy import (
    CompanyPolicy,
    ContactPolicy,
    parse_action_policy,
    parse_company_policy,
)
from nba.exceptions import CatalogError, ExpressionError
from nba.profiles import NUMERIC_FEATURE_NAMES
from nba.vocabulary import CHANNELS, FAMILIES

ACTION_ID_PATTERN = re.compile(r"^[a-z0-9_]+$")
CATALOG_FILE = "actions.yaml"
NO_ACTION = "no_action"
"""Reserved id of a logged decision to present nothing; never a catalog action."""
DEFAULT_HORIZON_DAYS = 180
OBJECTIVES = ("incremental", "acceptance")
LEGACY_NOTE = (
    "this catalog sets neither 'objective' nor 'horizon_days', so its values are read the "
    "old way (what acceptance is worth, keeping the customer included) and actions are "
    "ranked by chance of a yes x value; add 'objective: incremental' to learn what each "
    "action changes over the following months instead"
)
_TOP_KEYS = {"actions", "objective", "horizon_days", "contact_policy", "unspoken_reasons"}
DEFAULT_UNSPOKEN = ("age_years",)
"""Profile features never given to an agent as a reason: age (from the birth year)."""

_ACTION_KEYS = {
    "id",
    "family",
    "name",
    "script",
    "value",
    "cost",
    "product",
    "channels",
    "eligibility",
    "contact_policy",
    "lever",
}

Array = np.ndarray
Features = Mapping[str, Array]

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: np.divide,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": lambda *a: _reduce(np.fmin, a),
    "max": lambda *a: _reduce(np.fmax, a),
    "abs": np.abs,
}


def _reduce(fn: Callable[[Any, Any], Any], args: Sequence[Any]) -> Any:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


@dataclass(frozen=True)
class Expression:
    """A parsed, checked expression over profile features."""

    source: str
    tree: ast.expr = field(repr=False, compare=False)
    names: frozenset[str]

    def evaluate(self, features: Features, n: int) -> Array:
        """Evaluate over ``n`` rows; ``features`` maps names to arrays of shape ``(n,)``.

        Returns an array of shape ``(n,)`` (float for values, bool for conditions).
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _eval(self.tree, features)
        return np.broadcast_to(np.asarray(out), (n,))


MAX_EXPRESSION_CHARS = 2_000
"""Longer rules are refused: they are unreadable, and deep ones overflow the parser."""


def parse_expression(source: str, *, where: str = "expression") -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` naming ``where`` on error."""
    text = str(source).strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"{where}: the expression is {len(text):,} characters long (at most "
            f"{MAX_EXPRESSION_CHARS:,}); write a shorter rule"
        )
    # YAML users write true/false; Python's ast wants True/False.
    text_py = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    try:
        tree = ast.parse(text_py, mode="eval").body
        names: set[str] = set()
        _check(tree, text, where, names)
    except SyntaxError as exc:
        raise ExpressionError(f"{where}: cannot parse '{text}': {exc.msg}") from None
    except (RecursionError, MemoryError):  # nested deeper than Python's parser goes
        raise ExpressionError(
            f"{where}: the expression is nested too deeply; write a shorter rule"
        ) from None
    return Expression(text, tree, frozenset(names))


def _check(node: ast.AST, text: str, where: str, names: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int | float):  # bool is an int subclass
            return
        raise ExpressionError(f"{where}: '{text}': only numbers and true/false are allowed")
    if isinstance(node, ast.Name):
        if node.id not in NUMERIC_FEATURE_NAMES:
            hint = _closest(node.id)
            raise ExpressionError(
                f"{where}: '{text}': unknown feature '{node.id}'"
                + (f" (did you mean '{hint}'?)" if hint else "")
                + "; see docs/profile_features.md"
            )
        names.add(node.id)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, where, names)
        _check(node.right, text, where, names)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        _check(node.operand, text, where, names)
        return
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text, where, names)
        return
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for v in [node.left, *node.comparators]:
            _check(v, text, where, names)
        return
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and node.args
    ):
        for a in node.args:
            _check(a, text, where, names)
        return
    kind = type(node).__name__
    raise ExpressionError(
        f"{where}: '{text}': '{kind}' is not allowed (use numbers, feature names, "
        "+ - * /, comparisons, and/or/not, min/max/abs)"
    )


def _closest(name: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, NUMERIC_FEATURE_NAMES, n=1)
    return match[0] if match else None


def _eval(node: ast.AST, f: Features) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return np.asarray(f[node.id], dtype=float)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, f), _eval(node.right, f))
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, f)
        return np.logical_not(val) if isinstance(node.op, ast.Not) else -val
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return _reduce(combine, [_eval(v, f) for v in node.values])
    if isinstance(node, ast.Compare):
        result: Any = True
        left = _eval(node.left, f)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, f)
            result = np.logical_and(result, _COMPARE[type(op)](left, right))
            left = right
        return result
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCTIONS[node.func.id](*[_eval(a, f) for a in node.args])
    raise AssertionError(f"unchecked node {type(node).__name__}")  # _check rejects these


@dataclass(frozen=True)
class Action:
    """One entry of the catalog."""

    id: str
    family: str
    name: str
    value: float | Expression
    cost: float | Expression = 0.0
    script: str | None = None
    product: str | None = None
    channels: tuple[str, ...] = CHANNELS
    eligibility: Expression | None = None
    contact_policy: ContactPolicy = field(default_factory=ContactPolicy)
    lever: float = 1.0

    def value_of(self, features: Features, n: int) -> Array:
        """Business value if accepted, shape ``(n,)``."""
        if isinstance(self.value, Expression):
            return self.value.evaluate(features, n).astype(float)
        return np.full(n, float(self.value))

    def cost_of(self, features: Features, n: int) -> Array:
        """Cost if accepted, shape ``(n,)``."""
        if isinstance(self.cost, Expression):
            return self.cost.evaluate(features, n).astype(float)
        return np.full(n, float(self.cost))

    @property
    def expression_names(self) -> frozenset[str]:
        """Profile features that the value and cost expressions read."""
        names: frozenset[str] = frozenset()
        for part in (self.value, self.cost):
            if isinstance(part, Expression):
                names |= part.names
        return names


@dataclass(frozen=True)
class Catalog:
    """The actions, in file order, plus where they came from."""

    actions: tuple[Action, ...]
    source: str
    objective: str = "incremental"
    """``incremental``: rank by what an action changes (acceptance value plus the learned
    change in revenue over ``horizon_days``); ``acceptance``: by chance of a yes x value."""
    horizon_days: int = DEFAULT_HORIZON_DAYS
    notes: tuple[str, ...] = ()
    company_policy: CompanyPolicy = field(default_factory=CompanyPolicy)
    """Contact limits across families and all actions (:mod:`nba.contact_policy`)."""
    unspoken_reasons: frozenset[str] = frozenset(DEFAULT_UNSPOKEN)
    """Profile features the model may use but an agent is never given as a reason."""

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.actions)

    def by_id(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(action_id)

    @property
    def family_of(self) -> dict[str, str]:
        return {a.id: a.family for a in self.actions}


def default_catalog_path() -> Path:
    return Path(str(resources.files("nba") / "data" / CATALOG_FILE))


def load_catalog(path: Path | None = None) -> Catalog:
    """Load a catalog file; ``None`` loads the engine's default catalog."""
    path = path or default_catalog_path()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(
            f"{path}: byte {exc.start + 1:,} is not UTF-8 text (is it a binary file, or saved "
            "in another encoding?); save the catalog as UTF-8"
        ) from None
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a directory, not a catalog file") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {_first_lines(exc)}") from None
    except RecursionError:
        raise CatalogError(f"{path}: nested too deeply to be a catalog") from None
    return parse_catalog(raw, source=str(path))


def _first_lines(exc: Exception, n: int = 3) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines()[:n])


def catalog_for_dataset(data_dir: Path) -> Catalog:
    """A dataset's own ``actions.yaml`` if it has one, else the default catalog."""
    own = Path(data_dir) / CATALOG_FILE
    return load_catalog(own if own.is_file() else None)


def parse_catalog(raw: Any, *, source: str = "actions.yaml") -> Catalog:
    """Check a parsed YAML document and build the :class:`Catalog`."""
    if not isinstance(raw, dict) or not isinstance(raw.get("actions"), list):
        raise CatalogError(f"{source}: expected a mapping with a list under 'actions'")
    if not raw["actions"]:
        raise CatalogError(f"{source}: 'actions' is empty; the catalog needs at least one action")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise CatalogError(
            f"{source}: unknown top-level key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}"
        )
    objective, horizon, notes = _parse_objective(raw, source)
    actions: list[Action] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw["actions"], start=1):
        action = _parse_action(entry, f"{source}: action #{i}")
        if action.id in seen:
            raise CatalogError(f"{source}: action #{i}: duplicate id '{action.id}'")
        seen.add(action.id)
        actions.append(action)
    company = parse_company_policy(raw.get("contact_policy"), source)
    unspoken = _parse_unspoken(raw.get("unspoken_reasons", list(DEFAULT_UNSPOKEN)), source)
    return Catalog(tuple(actions), source, objective, horizon, notes, company, unspoken)


def _parse_unspoken(raw: Any, source: str) -> frozenset[str]:
    """``unspoken_reasons``: profile feature names (an empty list: every input may be said)."""
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise CatalogError(
            f"{source}: key 'unspoken_reasons': expected a list of profile feature names, "
            f"got {raw!r}"
        )
    for name in raw:
        if name not in NUMERIC_FEATURE_NAMES:
            starts = [f for f in NUMERIC_FEATURE_NAMES if f.startswith(f"{name}_")]
            close = _closest(name) or (starts[0] if starts else None)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise CatalogError(
                f"{source}: key 'unspoken_reasons': '{name}' is not a profile feature{hint}; "
                "the names are listed in docs/profile_features.md"
            )
    return frozenset(raw)


def _parse_objective(raw: dict[str, Any], source: str) -> tuple[str, int, tuple[str, ...]]:
    """(objective, horizon_days, notes). A catalog that sets neither key predates the
    long-term value model: it keeps its old meaning (acceptance ranking), with a note."""
    if "objective" not in raw and "horizon_days" not in raw:
        return "acceptance", DEFAULT_HORIZON_DAYS, (f"{source}: {LEGACY_NOTE}",)
    objective = raw.get("objective", "incremental")
    if objective not in OBJECTIVES:
        raise CatalogError(
            f"{source}: key 'objective': '{objective}' is not one of {', '.join(OBJECTIVES)}"
        )
    horizon = raw.get("horizon_days", DEFAULT_HORIZON_DAYS)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 3650:
        raise CatalogError(
            f"{source}: key 'horizon_days': expected a whole number of days from 1 to 3650, "
            f"got {horizon!r}"
        )
    return str(objective), int(horizon), ()


def _parse_action(entry: Any, where: str) -> Action:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: expected a mapping of keys, got {type(entry).__name__}")
    unknown = sorted(set(entry) - _ACTION_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_ACTION_KEYS)}")
    for key in ("id", "family", "name", "value"):
        if entry.get(key) is None:
            raise CatalogError(f"{where}: key '{key}' is required")
    action_id = entry["id"]
    if not isinstance(action_id, str) or not ACTION_ID_PATTERN.match(action_id):
        raise CatalogError(f"{where}: key 'id': '{action_id}' must match [a-z0-9_]+")
    if action_id == NO_ACTION:
        raise CatalogError(
            f"{where}: key 'id': '{NO_ACTION}' is reserved for decisions that presented "
            "nothing; give the action another id"
        )
    where = f"{where} '{action_id}'"
    family = entry["family"]
    if family not in FAMILIES:
        raise CatalogError(
            f"{where}: key 'family': unknown family '{family}' (one of {', '.join(FAMILIES)})"
        )
    product = entry.get("product")
    if family == "product_offer" and not product:
        raise CatalogError(f"{where}: key 'product': a product_offer must name its product")
    if product is not None and not isinstance(product, str):
        raise CatalogError(f"{where}: key 'product': expected a product code, got {product!r}")

    value = _amount(entry["value"], where, "value")
    cost = _amount(entry.get("cost", 0.0), where, "cost")

    channels = entry.get("channels")
    if channels is None:
        channels = list(CHANNELS)
    if not isinstance(channels, list) or not channels:
        raise CatalogError(f"{where}: key 'channels': expected a non-empty list")
    bad = [c for c in channels if c not in CHANNELS]
    if bad:
        raise CatalogError(
            f"{where}: key 'channels': unknown channel(s) {bad} (one of {', '.join(CHANNELS)})"
        )
    eligibility = entry.get("eligibility")
    return Action(
        id=action_id,
        family=family,
        name=_text(entry["name"], where, "name"),
        script=None if entry.get("script") is None else _text(entry["script"], where, "script"),
        value=value,
        cost=cost,
        product=product,
        channels=tuple(channels),
        eligibility=None
        if eligibility is None
        else parse_expression(eligibility, where=f"{where}: key 'eligibility'"),
        contact_policy=parse_action_policy(entry.get("contact_policy"), where),
        lever=_number(entry.get("lever", 1.0), where, "lever", minimum=0.0),
    )


def _amount(raw: Any, where: str, key: str) -> float | Expression:
    """A money amount: a number (a cost must not be negative) or an expression."""
    if isinstance(raw, str):
        return parse_expression(raw, where=f"{where}: key '{key}'")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CatalogError(f"{where}: key '{key}': expected a number or an expression")
    if key == "cost":
        return _number(raw, where, key, minimum=0.0)
    return float(raw)


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: key '{key}': expected non-empty text")
    return value.strip()


def _number(value: Any, where: str, key: str, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(f"{where}: key '{key}': expected a number, got {value!r}")
    if value < minimum:
        raise CatalogError(f"{where}: key '{key}': {value} is below the minimum {minimum:g}")
    return float(value)
