"""Column encoders: one column of a typed table ↔ a few real-valued columns for the diffusion.

Each encoder is fitted to one column and its `ColumnSchema`; `encode` maps
the column's cells to a float block (rows, width) and `decode` maps any
block back to valid cells of the column's type: observed categories,
integers, values within the observed bounds at the column's precision.

- `NumericEncoder` (continuous, integer, discrete, datetime): the value by
  its empirical CDF onto a standard normal (quantile normalisation, as
  TabDDPM), where atoms — every value of a discrete column, and the point
  masses (a value holding ≥ 5% of the cells, e.g. exact zeros) of a
  continuous one — own an interval of the CDF: training draws u uniformly in
  it (dequantization) and any u decoded inside it returns the atom exactly.
  Missing cells get an indicator column and a value drawn from the prior.
  With `numerical="standard"` the value is standardised instead, decoded
  by clipping and snapping to the observed values of a discrete column.
- `CategoricalEncoder` (categorical, boolean): a code per category — ±1 for
  two, one-hot up to `ONE_HOT_MAX_CATEGORIES`, analog bits (Chen et al.
  2023) beyond — decoded by the nearest code; a missing cell is a category.
- `IdEncoder`: no columns; identifiers are regenerated in sequence.

Reference: Kotelnikov et al. 2023 (TabDDPM), quantile normalisation;
Chen, Zhang & Hinton 2023, "Analog Bits".
"""

import math

import numpy as np
import pandas as pd
from scipy import special

POINT_MASS_FRACTION = 0.05
MAX_POINT_MASSES = 3
MAX_QUANTILES = 1000
ONE_HOT_MAX_CATEGORIES = 32
_U_EPS = 1e-7


class IdEncoder:
    """Identifiers: nothing to learn; `decode` numbers rows id_start + start_index + i."""

    width = 0

    def __init__(self, column):
        self.column = column

    @property
    def names(self):
        return []

    def fit(self, series):
        return self

    def encode(self, series, rng=None, strict=True):
        return np.zeros((len(series), 0))

    def decode(self, block, start_index=0):
        c = self.column
        numbers = np.arange(len(block)) + c.id_start + start_index
        if _numpy_kind(c.dtype) in "iuf":
            return pd.Series(numbers, name=c.name).astype(c.dtype)
        return pd.Series([f"{c.id_prefix}{n:0{c.id_width}d}" for n in numbers], name=c.name, dtype=_text_dtype(c))

    def condition(self, value):
        raise ValueError(f"Column {self.column.name!r} is an identifier; it is regenerated and cannot be fixed.")

    def get_config(self):
        return {}

    def set_config(self, config):
        return self


class CategoricalEncoder:
    """A categorical or boolean column as ±1 (two categories), one-hot, or analog bits; missing is a category."""

    def __init__(self, column):
        self.column = column
        self.categories = list(column.categories or []) + ([None] if column.missing else [])
        self.codes = _codes(len(self.categories))
        self.width = self.codes.shape[1]
        self._index = {value: i for i, value in enumerate(self.categories) if value is not None}

    @property
    def names(self):
        name = self.column.name
        if self.width == 1:
            return [f"{name}={self.categories[1]}"]
        if len(self.categories) <= ONE_HOT_MAX_CATEGORIES:
            return [f"{name}={value}" for value in self.categories]
        return [f"{name}:bit{i}" for i in range(self.width)]

    def fit(self, series):
        return self

    def indices(self, series, strict=True):
        """The category index of each cell (-1 for an unseen value when not `strict`)."""
        missing = series.isna().to_numpy()
        index = pd.Series(series.to_numpy(dtype=object)).map(self._index).to_numpy(dtype=np.float64, na_value=np.nan)
        result = np.where(np.isnan(index), -1, index).astype(np.int64)
        if self.column.missing:
            result[missing] = len(self.categories) - 1
        unseen = (result < 0) & ~missing
        if strict and (unseen.any() or (missing.any() and not self.column.missing)):
            bad = series[unseen | (missing & (result < 0))].tolist()[:3]
            raise ValueError(
                f"Column {self.column.name!r} holds {bad[0]!r}, which is not one of its categories "
                f"{self.categories[:8]}{' ...' if len(self.categories) > 8 else ''}."
            )
        return result

    def encode(self, series, rng=None, strict=True):
        indices = self.indices(series, strict)
        block = np.zeros((len(series), self.width))
        known = indices >= 0
        block[known] = self.codes[indices[known]]
        return block

    def decode(self, block, start_index=0):
        indices = _nearest_code(block, self.codes)
        values = [self.categories[i] for i in indices]
        return _typed(pd.Series(values, name=self.column.name, dtype=object), self.column)

    def condition(self, value):
        index = self.indices(pd.Series([value], dtype=object))[0]
        return self.codes[index], np.ones(self.width)

    def get_config(self):
        return {}

    def set_config(self, config):
        return self


class NumericEncoder:
    """A continuous, integer, discrete or datetime column: quantile normalisation with atoms, or standardisation.

    Args:
        column: its `ColumnSchema`.
        numerical: "quantile" (default) or "standard".
    """

    def __init__(self, column, numerical="quantile"):
        if numerical not in ("quantile", "standard"):
            raise ValueError(f"`numerical` must be 'quantile' or 'standard'; received {numerical!r}.")
        self.column = column
        self.numerical = numerical
        self.width = 1 + int(column.missing)
        self.atoms = np.zeros(0)
        self.atom_low = self.atom_high = np.zeros(0)
        self.knots_u = self.knots_x = np.zeros(0)
        self._quantiles = self._levels = np.zeros(0)
        self._mass, self.mean, self.std = 1.0, 0.0, 1.0

    @property
    def names(self):
        return [self.column.name] + ([f"{self.column.name}:missing"] if self.column.missing else [])

    def fit(self, series):
        x = self.numbers(series)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            self.knots_u, self.knots_x = np.array([0.0, 1.0]), np.zeros(2)
            return self
        self.mean, self.std = float(x.mean()), float(x.std()) or 1.0
        values, counts = np.unique(x, return_counts=True)
        if self.column.type == "discrete" or len(values) == 1:
            atom = np.ones(len(values), dtype=bool)
        else:
            atom = counts >= POINT_MASS_FRACTION * len(x)
            atom[np.argsort(-counts)[MAX_POINT_MASSES:]] = False
        self._fit_cdf(x, values[atom], counts[atom] / len(x))
        return self

    def _fit_cdf(self, x, atoms, atom_mass):
        """The CDF of x as knots (u, x) with a flat step of width p_a at every atom a."""
        rest = np.sort(x[~np.isin(x, atoms)])
        mass = 1.0 - atom_mass.sum()
        if len(rest) == 1:  # a single non-atom value is an atom of its own
            atoms, atom_mass, rest, mass = np.append(atoms, rest), np.append(atom_mass, mass), rest[:0], 0.0
            order = np.argsort(atoms)
            atoms, atom_mass = atoms[order], atom_mass[order]
        # the continuous part's CDF levels stop half a row short of its ends, so that its extreme values
        # map strictly inside its share of (0, 1), apart from an atom's step beside them
        inset = 0.5 / max(len(rest), 1)
        positions = np.linspace(0.0, 1.0, min(MAX_QUANTILES, len(rest))) if len(rest) else np.zeros(0)
        quantiles = np.quantile(rest, positions) if len(rest) else np.zeros(0)
        levels = inset + (1 - 2 * inset) * positions
        below = lambda v: atom_mass[atoms < v].sum()  # noqa: E731
        low = np.array([mass * self._continuous_cdf(a, quantiles, levels) + below(a) for a in atoms])
        knots = [(mass * level + below(q), q) for level, q in zip(levels, quantiles)]
        knots += [(l, a) for l, a in zip(low, atoms)] + [(l + p, a) for l, a, p in zip(low, atoms, atom_mass)]
        knots.sort(key=lambda knot: (knot[1], knot[0]))  # by x: the CDF is monotone, rounding in u is not
        self.atoms, self.atom_low, self.atom_high = atoms, low, low + atom_mass
        self.knots_u = np.maximum.accumulate(np.array([k[0] for k in knots]))
        self.knots_x = np.array([k[1] for k in knots])
        self._quantiles, self._levels, self._mass = quantiles, levels, mass

    @staticmethod
    def _continuous_cdf(v, quantiles, levels):
        return float(np.interp(v, quantiles, levels)) if len(quantiles) else 0.0

    def numbers(self, series):
        """The column's cells as float64 numbers (datetimes in days or seconds since 1970); NaN where missing."""
        if self.column.type == "datetime":
            stamps = pd.to_datetime(series)
            seconds = (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=np.float64)
            return seconds / 86400.0 if self.column.datetime_unit == "D" else seconds
        try:
            return pd.to_numeric(series).to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"Column {self.column.name!r} holds values that are not numbers.") from None

    def _to_u(self, x, rng):
        """x → u in (0, 1) by the CDF; atoms dequantized uniformly in their step (midpoint without `rng`)."""
        u = np.empty_like(x)
        is_atom = np.isin(x, self.atoms)
        index = np.searchsorted(self.atoms, x[is_atom])
        low, high = self.atom_low[index], self.atom_high[index]
        fraction = 0.001 + 0.998 * rng.random(len(index)) if rng is not None else 0.5  # inside the step, off its edges
        u[is_atom] = low + (high - low) * fraction
        rest = x[~is_atom]
        continuous = np.interp(rest, self._quantiles, self._levels) if len(self._quantiles) else np.zeros(len(rest))
        mass_below = np.concatenate([[0.0], np.cumsum(self.atom_high - self.atom_low)])
        u[~is_atom] = self._mass * continuous + mass_below[np.searchsorted(self.atoms, rest)]
        return u

    def encode(self, series, rng=None, strict=True):
        x = self.numbers(series)
        missing = np.isnan(x)
        if missing.any() and strict and not self.column.missing:
            raise ValueError(f"Column {self.column.name!r} has missing cells, but had none when the model was fitted.")
        block = np.zeros((len(x), self.width))
        present = x[~missing]
        if self.numerical == "quantile":
            z = special.ndtri(np.clip(self._to_u(present, rng), _U_EPS, 1 - _U_EPS))
        else:
            z = (present - self.mean) / self.std
        block[~missing, 0] = z
        if missing.any():
            block[missing, 0] = rng.standard_normal(missing.sum()) if rng is not None else 0.0
        if self.column.missing:
            block[:, 1] = np.where(missing, 1.0, -1.0)
        return block

    def decode(self, block, start_index=0):
        c = self.column
        z = block[:, 0].astype(np.float64)
        if self.numerical == "quantile":
            x = np.interp(special.ndtr(z), self.knots_u, self.knots_x)
        else:
            x = z * self.std + self.mean
        if c.minimum is not None:
            low, high = (self.numbers(pd.Series([c.minimum, c.maximum])) if c.type == "datetime" else (c.minimum, c.maximum))
            x = np.clip(x, low, high)
        if c.type == "discrete" and c.categories:
            x = _snap(x, np.asarray(c.categories, dtype=np.float64))
        elif c.type in ("integer", "datetime"):
            x = np.round(x)
        elif c.decimals is not None:
            x = np.round(x, c.decimals)
        if c.missing:
            x = np.where(block[:, 1] > 0, np.nan, x)
        return self._column_values(x)

    def _column_values(self, x):
        c = self.column
        if c.type == "datetime":
            unit_seconds = 86400.0 if c.datetime_unit == "D" else 1.0
            return pd.Series(pd.to_datetime(x * unit_seconds, unit="s"), name=c.name).astype(c.dtype)
        return _typed(pd.Series(x, name=c.name), c)

    def condition(self, value):
        block = self.encode(pd.Series([value]), rng=None)[0]
        if pd.isna(value):  # a missing cell: fix the indicator, leave the value free
            return block, np.array([0.0, 1.0])
        return block, np.ones(self.width)

    def get_config(self):
        return {
            "atoms": self.atoms.tolist(),
            "atom_low": self.atom_low.tolist(),
            "atom_high": self.atom_high.tolist(),
            "knots_u": self.knots_u.tolist(),
            "knots_x": self.knots_x.tolist(),
            "quantiles": self._quantiles.tolist(),
            "levels": self._levels.tolist(),
            "mass": self._mass,
            "mean": self.mean,
            "std": self.std,
        }

    def set_config(self, config):
        for key in ("atoms", "atom_low", "atom_high", "knots_u", "knots_x"):
            setattr(self, key, np.asarray(config[key], dtype=np.float64))
        self._quantiles = np.asarray(config["quantiles"], dtype=np.float64)
        self._levels = np.asarray(config["levels"], dtype=np.float64)
        self._mass, self.mean, self.std = config["mass"], config["mean"], config["std"]
        return self


def _codes(num_categories):
    """The code of each category: none for one, ±1 for two, one-hot up to 32, analog bits (±1) beyond."""
    if num_categories <= 1:
        return np.zeros((num_categories, 0))
    if num_categories == 2:
        return np.array([[-1.0], [1.0]])
    if num_categories <= ONE_HOT_MAX_CATEGORIES:
        return np.eye(num_categories)
    bits = math.ceil(math.log2(num_categories))
    return 2.0 * ((np.arange(num_categories)[:, None] >> np.arange(bits)) & 1) - 1.0


def _nearest_code(block, codes):
    """The index of the code nearest to each row of `block` (squared distance)."""
    if codes.shape[1] == 0:
        return np.zeros(len(block), dtype=np.int64)
    distances = (codes**2).sum(axis=1)[None, :] - 2.0 * block @ codes.T
    return np.argmin(distances, axis=1)


def _snap(x, values):
    """Each x replaced by the nearest of the sorted `values` (NaN stays NaN)."""
    if len(values) == 1:
        return np.where(np.isnan(x), np.nan, values[0])
    index = np.clip(np.searchsorted(values, x), 1, len(values) - 1)
    left, right = values[index - 1], values[index]
    return np.where(np.abs(x - left) <= np.abs(right - x), left, right)


def _numpy_kind(name):
    """The numpy kind letter of a dtype name ("i", "f", ...), or "O" for pandas-only dtypes such as "str"."""
    try:
        return np.dtype(name).kind
    except TypeError:
        return "O"


def _text_dtype(column):
    return "str" if column.dtype == "str" else object


def _typed(series, column):
    """`series` cast to the column's dtype; a dtype that cannot hold missing cells becomes its nullable twin."""
    dtype = column.dtype
    if series.isna().any() and dtype.startswith(("int", "uint")):
        dtype = dtype.capitalize()
    if series.isna().any() and dtype == "bool":
        dtype = "boolean"
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series.astype(object)
