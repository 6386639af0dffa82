"""The fitted state of a `Forecaster` apart from its network, and its JSON form.

`Channels` says what each column of the user's frame is for (model input, target, known-future
covariate, calendar feature, ignored); `FrameSchema` adds what fitting learnt (scaler, frequency,
layout, calibration offsets, history) and the options it was fitted with. `FrameSchema.to_dict` is the
`forecaster` section of a saved model's `config.json`; `FrameSchema.from_dict` reads formats 1 and 2
and refuses, in one line, a section that is malformed or does not match the network. Format 2's
optional keys `interval_floor`, `season` and `selection` (with per-step `interval_offsets`), `stand_ins` and
`fitted_until` are written only when set, so a model saved before them is re-saved key for key. So is `ensemble` (the number of
models whose mean forecast is the model's, written only when above 1): an ensemble's networks forecast
points, and its quantiles are the calibrated copies of their mean (`samformer.nn.quantile.PointQuantiles`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from samformer.data.channels import ChannelSpec, calendar_features
from samformer.data.series import ChannelRoles, StandardScaler
from samformer.errors import ModelFileError
from samformer.forecasting.baselines import season_length
from samformer.forecasting.statistical import FITTED_CANDIDATES
from samformer.nn.model import SAMformerConfig
from samformer.training.logs import history_problem

SCHEMA_FORMAT = 2  # 2 added targets and covariates; format 1 (every channel a target) still loads
STAND_IN_NAMES = ("naive", "seasonal_naive", *FITTED_CANDIDATES)
RUNTIME_OPTIONS = ("device",)  # training options that belong to the machine, never saved with a model


@dataclass(frozen=True)
class Channels:
    """The model's input channels by name, in order, and the role of each."""

    columns: tuple[str, ...]  # the model's input channels (D), in order
    targets: tuple[str, ...]  # the channels forecast and scored (D_targets)
    future: tuple[str, ...] = ()  # known-future covariates taken from the user's frame
    calendar: tuple[str, ...] = ()  # calendar features derived from the timestamps
    ignored: tuple[str, ...] = ()  # columns of the training frame that are not inputs

    @classmethod
    def from_spec(cls, frame: pd.DataFrame, spec: ChannelSpec) -> Channels:
        """The channels `spec` selects from `frame`'s columns."""
        selected, roles = spec.apply(frame)
        given = {str(c) for c in frame.columns}
        columns = tuple(str(c) for c in selected.columns)
        targets = columns if roles.targets is None else tuple(columns[i] for i in roles.targets)
        return cls(
            columns,
            targets,
            future=tuple(columns[i] for i in roles.future if columns[i] in given),
            calendar=tuple(c for c in columns if c not in given),
            ignored=tuple(str(c) for c in frame.columns if str(c) not in columns),
        )

    @property
    def user_columns(self) -> list[str]:
        """The input channels that come from the user's frame (all but the calendar features)."""
        return [c for c in self.columns if c not in self.calendar]

    @property
    def target_indices(self) -> list[int]:
        """Positions of the targets among the input channels."""
        return [self.columns.index(c) for c in self.targets]

    def roles(self) -> ChannelRoles:
        """The channel roles as indices (see `samformer.data.series.ChannelRoles`)."""
        future = [*self.future, *self.calendar]
        targets = None if self.targets == self.columns else tuple(self.target_indices)
        return ChannelRoles(targets=targets, future=tuple(sorted(self.columns.index(c) for c in future)))

    def model_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (the user's input columns) with the calendar features added, in the model's channel order."""
        if not self.calendar:
            return frame[list(self.columns)]
        return pd.concat([frame, calendar_features(frame.index, list(self.calendar))], axis=1)[list(self.columns)]

    def is_consistent(self) -> bool:
        """Every named channel is an input, and no target is also a known-future input."""
        named = {*self.targets, *self.future, *self.calendar}
        return named <= set(self.columns) and not set(self.targets) & {*self.future, *self.calendar}


@dataclass(frozen=True)
class FrameSchema:
    """Everything a fitted `Forecaster` knows besides its weights; `to_dict`/`from_dict` give its JSON form."""

    horizon: int
    seq_len: int
    channels: Channels
    scaler: StandardScaler  # over the input channels (D,)
    freq: str
    layout: str  # "wide" or "long": the layout of the training input, and so of the forecasts
    quantiles: tuple[float, ...] | None = None
    interval_offsets: np.ndarray | None = None  # (H, D_targets, Q) — or (D_targets, Q), saved before per-step calibration
    model_options: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields, without RUNTIME_OPTIONS
    history: list[dict[str, Any]] = field(default_factory=list)
    interval_floor: np.ndarray | None = None  # (H, D_targets, Q): least distance of each level from the median
    season: int | None = None  # seasonal period in steps; None: derived from freq when read (models saved without it)
    selection: list[dict[str, Any]] = field(default_factory=list)  # the look-back search: seq_len, val_score, epochs, chosen
    ensemble: int = 1  # models whose mean forecast is the model's (seeds seed, seed + 1, ...)
    tz: str | None = None  # the training timestamps' time zone (None: naive, or saved before zones were kept)
    stand_ins: dict[str, str] = field(default_factory=dict)  # target -> the statistical forecaster used there instead
    fitted_until: str | None = None  # the last timestamp fitted on (ISO, naive), validation rows included

    @property
    def season_steps(self) -> int | None:
        """The seasonal period in steps: the one fitted with, or derived from the frequency for models saved without one."""
        return self.season if self.season is not None else season_length(self.freq)

    def replace(self, **changes: Any) -> FrameSchema:
        """A copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form written into `config.json` (keys in a fixed order)."""
        ch = self.channels
        section = {
            "format": SCHEMA_FORMAT,
            "horizon": self.horizon,
            "seq_len": self.seq_len,
            "quantiles": None if self.quantiles is None else list(self.quantiles),
            "interval_offsets": None if self.interval_offsets is None else self.interval_offsets.tolist(),
            "freq": self.freq,
            "layout": self.layout,
            "columns": list(ch.columns),
            "targets": list(ch.targets),
            "future_columns": list(ch.future),
            "calendar_columns": list(ch.calendar),
            "ignored_columns": list(ch.ignored),
            "scaler": {"mean": self.scaler.mean.tolist(), "std": self.scaler.std.tolist()},
            "model_options": self.model_options,
            "train_config": {k: v for k, v in self.train_config.items() if k not in RUNTIME_OPTIONS},
            "history": self.history,
        }
        added = {"interval_floor": self.interval_floor, "season": self.season, "selection": self.selection}
        if any(v is not None and (not isinstance(v, list) or v) for v in added.values()):
            floor = self.interval_floor
            section.update(added, interval_floor=None if floor is None else floor.tolist())
        if self.ensemble > 1:
            section["ensemble"] = self.ensemble
        if self.tz is not None:  # naive models keep the keys they had before zones were kept
            section["tz"] = self.tz
        if self.stand_ins:
            section["stand_ins"] = dict(self.stand_ins)
        if self.fitted_until is not None:
            section["fitted_until"] = self.fitted_until
        return section

    @classmethod
    def from_dict(cls, meta: Any, network: SAMformerConfig, where: str, members: int = 1) -> FrameSchema:
        """Read a `forecaster` section (format 1 or 2) and check it against the `network` it was saved with
        (`members` models of that configuration).

        Raises ModelFileError naming `where` (the config file) for a section that is malformed,
        inconsistent, or does not match the network's channels, window, horizon or targets.
        """
        found = meta.get("format") if isinstance(meta, dict) else None
        if found not in (1, SCHEMA_FORMAT):
            raise ModelFileError(f"{where} uses forecaster format {found!r}; this samformer reads formats 1 to {SCHEMA_FORMAT}")
        problem = history_problem(meta.get("history"))  # before parsing: the section is read as typed from here on
        if problem is not None:
            raise ModelFileError(f"{where} holds a malformed training history ({problem}); re-save the model")
        try:
            schema = cls._parse(meta)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{where} has an invalid forecaster section ({exc!r}); re-save the model") from None
        if schema.ensemble != members:
            raise ModelFileError(f"{where} records an ensemble of {schema.ensemble} model(s), its weights {members}; re-save the model")
        if not schema._matches(network):
            raise ModelFileError(f"{where} does not match its weights (channels, seq_len, horizon or scaler); re-save the model")
        return schema

    @classmethod
    def _parse(cls, meta: dict[str, Any]) -> FrameSchema:
        columns = tuple(map(str, meta["columns"]))
        channels = Channels(
            columns,
            tuple(map(str, meta.get("targets", columns))),  # format 1: every channel a target
            future=tuple(map(str, meta.get("future_columns", ()))),
            calendar=tuple(map(str, meta.get("calendar_columns", ()))),
            ignored=tuple(map(str, meta.get("ignored_columns", ()))),
        )
        offsets, floor = meta.get("interval_offsets"), meta.get("interval_floor")
        season, tz = meta.get("season"), meta.get("tz")
        if tz is not None:
            pd.Timestamp(0).tz_localize(str(tz))  # an unknown zone: KeyError or ValueError, reported as an invalid section
        scaler = StandardScaler(*(np.asarray(meta["scaler"][k], dtype=np.float64) for k in ("mean", "std")))
        quantiles = None if meta["quantiles"] is None else tuple(float(q) for q in meta["quantiles"])
        return cls(
            horizon=meta["horizon"],
            seq_len=meta["seq_len"],
            channels=channels,
            scaler=scaler,
            freq=str(meta["freq"]),
            layout=str(meta["layout"]),
            quantiles=quantiles,
            interval_offsets=None if offsets is None else np.asarray(offsets, dtype=np.float64),
            interval_floor=None if floor is None else np.asarray(floor, dtype=np.float64),
            season=None if season is None else int(season),
            selection=[dict(row) for row in meta.get("selection", [])],
            tz=None if tz is None else str(tz),
            model_options=dict(meta["model_options"]),
            train_config={k: v for k, v in dict(meta["train_config"]).items() if k not in RUNTIME_OPTIONS},
            history=list(meta["history"]),
            ensemble=int(meta.get("ensemble", 1)),
            stand_ins={str(k): str(v) for k, v in dict(meta.get("stand_ins", {})).items()},
            fitted_until=_timestamp_text(meta.get("fitted_until")),
        )

    def _matches(self, network: SAMformerConfig) -> bool:
        """Whether this schema is internally consistent and fits `network`'s shapes."""
        D, Q = network.n_channels, len(self.quantiles or (None,))
        mean, std = self.scaler.mean, self.scaler.std
        return (
            len(self.channels.columns) == D == mean.shape[0] == std.shape[0]
            and self.channels.is_consistent()
            and network.target_channels == self.channels.roles().targets
            and self._calibration_matches(Q)
            and (self.season is None or self.season >= 1)
            and network.seq_len == self.seq_len
            and network.horizon == self.horizon * (1 if self.ensemble > 1 else Q)  # an ensemble's networks forecast points
            and bool(np.isfinite(mean).all())
            and bool((std > 0).all())
            and self.layout in ("wide", "long")
            and set(self.stand_ins) <= set(self.channels.targets)
            and set(self.stand_ins.values()) <= set(STAND_IN_NAMES)
        )

    def _calibration_matches(self, n_quantiles: int) -> bool:
        """Offsets absent, or finite of shape ([H,] D_targets, Q); a floor only with per-step offsets, finite and ≥ 0."""
        offsets, floor = self.interval_offsets, self.interval_floor
        if offsets is None:
            return floor is None
        per_step = (self.horizon, len(self.channels.targets), n_quantiles)
        shape_ok = offsets.shape in (per_step, per_step[1:]) and (floor is None or (offsets.shape == floor.shape == per_step))
        finite = np.isfinite(offsets).all() and (floor is None or (np.isfinite(floor).all() and (floor >= 0).all()))
        return n_quantiles > 1 and shape_ok and bool(finite)


def _timestamp_text(value: Any) -> str | None:
    """A stored timestamp as its ISO text; a value that is not one raises ValueError (an invalid section)."""
    return None if value is None else pd.Timestamp(str(value)).isoformat()
