"""Model cards: the JSON description that travels beside every ``.safetensors`` weights file.

A card holds the architecture and its config, the contract numbers (scale, window, radii), the
variables with their units, the normalisation statistics, the degradation used in training,
training-data provenance, validation metrics, the xsr version, the sha256 of the weights file and
the parameter count. A written card also carries ``card_sha256``, the digest of its own content
(every other field, the weights' sha256 included: :func:`card_digest`), so one digest covers the
weights and the card, and a card edited by hand is refused at load time. ``card_schema.json`` (beside this module) is the one schema every card
obeys; :meth:`ModelCard.validate` is a dependency-free check of the same rules run at load time
(the test-suite validates cards against the schema itself with ``jsonschema``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xsr.digest import sha256_json

__all__ = ["KINDS", "SCHEMA_PATH", "ModelCard", "ModelFileError", "card_digest", "load_schema"]

#: Path of the JSON schema of model cards.
SCHEMA_PATH = Path(__file__).with_name("card_schema.json")

_DEGRADATIONS = ("coarsen", "bicubic")

#: Model kinds: a field model maps any one scalar field to itself (normalised per frame, applied
#: to each data variable independently); a specialised model takes its named variables, with
#: units, stacked as channels and normalised by its training statistics.
KINDS = ("field", "specialised")


class ModelFileError(ValueError):
    """A model file or card is missing, unreadable, or disagrees with its weights."""


#: The card field holding :func:`card_digest` of the rest of the card.
CARD_DIGEST_FIELD = "card_sha256"


def card_digest(card: Mapping[str, Any]) -> str:
    """sha256 of a card's content: its canonical JSON without the ``card_sha256`` field.

    The content includes ``sha256`` (the weights file's digest), so this one digest covers the
    weights and every card field (normalisation, variables and their order, config, ...).
    Key order and JSON formatting do not change it (:func:`xsr.digest.sha256_json`).

    Parameters
    ----------
    card : mapping
        A card as a dict (e.g. read from JSON, or :meth:`ModelCard.to_dict`).

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> a = card_digest({"name": "m", "sha256": "0" * 64})
    >>> a == card_digest({"sha256": "0" * 64, "name": "m", "card_sha256": "anything"})
    True
    >>> a == card_digest({"name": "m2", "sha256": "0" * 64})
    False
    """
    return sha256_json({k: v for k, v in card.items() if k != CARD_DIGEST_FIELD})


def load_schema() -> dict[str, Any]:
    """Read ``card_schema.json``.

    Returns
    -------
    dict
        The JSON schema of model cards.

    Examples
    --------
    >>> load_schema()["title"]
    'xsr model card'
    """
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _json_clean(value: Any, where: str) -> Any:
    """Check that ``value`` is plain JSON (dict with str keys, list, str, number, bool, None)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} holds a non-finite number {value!r}; JSON cannot store it.")
        return value
    if isinstance(value, list | tuple):
        return [_json_clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}.")
            out[k] = _json_clean(v, f"{where}.{k}")
        return out
    raise ValueError(
        f"{where} holds a {type(value).__name__} ({value!r}), which is not JSON-serialisable; "
        "convert it to a number, string, list or dict."
    )


@dataclasses.dataclass
class ModelCard:
    """Description of a trained model (see the module notes and ``card_schema.json``).

    Parameters
    ----------
    name : str
        Model name (e.g. ``"fsrcnn-swe-x2"``).
    arch : str
        Registry architecture.
    config : dict
        ``get_model(arch, **config)`` rebuilds the architecture.
    scale, window, time_radius, receptive_radius : int
        The model contract numbers.
    variables : list of dict
        One ``{"name", "units", "long_name"}`` per channel, in channel order.
    normalisation : dict
        ``{variable: {"mean": float, "std": float}}``.
    degradation : dict or None
        ``{"method": "coarsen" | "bicubic", "scale": int}`` used in training; ``None`` when the
        model was never trained.
    training : dict
        Free-form training-data provenance (generator, seeds, frames, epochs).
    metrics : dict
        Held-out metrics (with their data range).
    xsr_version : str
        Version of xsr that wrote the card.
    sha256 : str
        Hex digest of the ``.safetensors`` file bytes.
    parameters : int
        Number of parameters.
    description : str
        Free text.
    kind : {"specialised", "field"}
        ``"field"``: one scalar field in, the same field out, applied to every data variable
        and normalised by each frame's own statistics (its single variable and normalisation
        are placeholders). ``"specialised"`` (the default, left out of the written card so
        that cards written before the field existed keep their digest): the card's variables,
        with units, as channels.
    site : dict or None
        A field model fine-tuned on one grid with ``site=True`` (:func:`xsr.train.fit`): its
        *site detail*, the stationary sub-grid pattern of each variable of that grid, which
        :func:`xsr.upscaling.upscale` adds to the network's output. ``{"method": str,
        "coords": {dim: [values] or null}, "variables": {name: {"dims": [...], "shape": [...],
        "shrinkage": float, ...}}}``; the maps themselves are the weights file's ``site.<name>``
        tensors. ``None`` (the default, left out of the written card): no site detail.
    card_sha256 : str
        :func:`card_digest` of the card as it was read (``""`` for a card built in memory);
        :meth:`to_json` always writes the digest of the current content. Not compared by ``==``.

    Examples
    --------
    >>> card = ModelCard(name="demo", arch="bicubic", config={"scale": 2, "channels": 1,
    ...     "conserve": False}, scale=2, window=1, time_radius=0, receptive_radius=2,
    ...     variables=[{"name": "h", "units": "m", "long_name": "depth"}],
    ...     normalisation={"h": {"mean": 0.0, "std": 1.0}}, sha256="0" * 64)
    >>> ModelCard.from_json(card.to_json()) == card
    True
    """

    name: str
    arch: str
    config: dict[str, Any]
    scale: int
    window: int
    time_radius: int
    receptive_radius: int
    variables: list[dict[str, str]]
    normalisation: dict[str, dict[str, float]]
    sha256: str
    degradation: dict[str, Any] | None = None
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    xsr_version: str = ""
    parameters: int = 0
    description: str = ""
    kind: str = "specialised"
    site: dict[str, Any] | None = None
    card_sha256: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.xsr_version:
            from xsr._version import __version__

            self.xsr_version = __version__

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The card as a plain JSON-compatible dict.

        Returns
        -------
        dict
            All fields (``card_sha256`` only when the card carries one).

        Examples
        --------
        >>> sorted(ModelCard.from_dict(_example()).to_dict())[:3]
        ['arch', 'config', 'degradation']
        """
        data = _json_clean(dataclasses.asdict(self), "card")
        if not data.get(CARD_DIGEST_FIELD):
            data.pop(CARD_DIGEST_FIELD, None)
        if data.get("kind") == "specialised":
            data.pop("kind")  # the default, absent from cards written before kinds existed
        if data.get("site") is None:
            data.pop("site", None)  # likewise: cards without site detail keep their digest
        return data

    def content_sha256(self) -> str:
        """:func:`card_digest` of the card's current content.

        Returns
        -------
        str
            64 lower-case hex digits.

        Examples
        --------
        >>> card = ModelCard.from_dict(_example())
        >>> card.content_sha256() == ModelCard.from_json(card.to_json()).card_sha256
        True
        """
        return card_digest(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build and validate a card from a dict (as read from JSON).

        Parameters
        ----------
        data : dict
            Card fields; unknown fields are refused.

        Returns
        -------
        ModelCard
            The validated card.

        Raises
        ------
        ValueError
            If a field is missing, unknown or of the wrong type.

        Examples
        --------
        >>> ModelCard.from_dict(_example()).arch
        'bicubic'
        """
        if not isinstance(data, dict):
            raise ValueError(f"a model card must be a JSON object, got {type(data).__name__}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"model card has unknown fields {unknown}.")
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"model card lacks the required fields {missing}.")
        card = cls(**data)
        card.validate()
        return card

    def to_json(self, *, indent: int = 2) -> str:
        """The card as JSON text (keys in field order), stamped with its ``card_sha256``.

        Parameters
        ----------
        indent : int, default 2
            JSON indentation.

        Returns
        -------
        str
            JSON text.

        Examples
        --------
        >>> '"arch": "bicubic"' in ModelCard.from_dict(_example()).to_json()
        True
        """
        data = self.to_dict()
        data[CARD_DIGEST_FIELD] = card_digest(data)
        return json.dumps(data, indent=indent) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse and validate a card from JSON text.

        Parameters
        ----------
        text : str
            JSON text.

        Returns
        -------
        ModelCard
            The validated card.

        Raises
        ------
        ValueError
            If the text is not valid JSON or not a valid card.

        Examples
        --------
        >>> ModelCard.from_json(ModelCard.from_dict(_example()).to_json()).scale
        2
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"model card is not valid JSON: {err}") from err
        return cls.from_dict(data)

    def summary(self) -> dict[str, Any]:
        """A short description: arch, scale, window, variables, metrics, parameters.

        Returns
        -------
        dict
            Summary fields.

        Examples
        --------
        >>> ModelCard.from_dict(_example()).summary()["variables"]
        ['h']
        """
        return {
            "arch": self.arch,
            "scale": self.scale,
            "window": self.window,
            "variables": [v["name"] for v in self.variables],
            "degradation": self.degradation,
            "metrics": self.metrics,
            "parameters": self.parameters,
            "description": self.description,
        }

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the card against the rules of ``card_schema.json`` (without ``jsonschema``).

        Raises
        ------
        ValueError
            Naming the first offending field.

        Examples
        --------
        >>> ModelCard.from_dict(_example()).validate()
        """
        _json_clean(dataclasses.asdict(self), "card")

        def need(ok: bool, field: str, rule: str) -> None:
            if not ok:
                value = getattr(self, field)
                raise ValueError(f"model card field {field!r} {rule}, got {value!r}.")

        def is_int(v: Any, minimum: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= minimum

        def is_number(v: Any) -> bool:
            return isinstance(v, int | float) and not isinstance(v, bool)

        need(isinstance(self.name, str) and bool(self.name), "name", "must be a non-empty string")
        need(isinstance(self.arch, str) and bool(self.arch), "arch", "must be a non-empty string")
        need(isinstance(self.config, dict), "config", "must be an object")
        need(is_int(self.scale, 1), "scale", "must be an integer >= 1")
        need(is_int(self.window, 1) and self.window % 2 == 1, "window", "must be odd >= 1")
        need(self.time_radius == self.window // 2, "time_radius", "must equal window // 2")
        need(is_int(self.receptive_radius, 0), "receptive_radius", "must be an integer >= 0")
        need(
            isinstance(self.variables, list)
            and len(self.variables) >= 1
            and all(
                isinstance(v, dict)
                and set(v) <= {"name", "units", "long_name"}
                and isinstance(v.get("name"), str)
                and bool(v.get("name"))
                and isinstance(v.get("units"), str)
                and isinstance(v.get("long_name", ""), str)
                for v in self.variables
            ),
            "variables",
            "must be a non-empty list of {'name', 'units', 'long_name'} string objects",
        )
        names = [v["name"] for v in self.variables]
        need(len(set(names)) == len(names), "variables", "must have unique names")
        need(
            isinstance(self.normalisation, dict)
            and set(self.normalisation) == set(names)
            and all(
                isinstance(s, dict)
                and set(s) == {"mean", "std"}
                and is_number(s["mean"])
                and is_number(s["std"])
                and s["std"] > 0
                for s in self.normalisation.values()
            ),
            "normalisation",
            "must map every variable to {'mean': number, 'std': positive number}",
        )
        need(
            self.degradation is None
            or (
                isinstance(self.degradation, dict)
                and set(self.degradation) == {"method", "scale"}
                and self.degradation["method"] in _DEGRADATIONS
                and is_int(self.degradation["scale"], 1)
            ),
            "degradation",
            f"must be null or {{'method': one of {_DEGRADATIONS}, 'scale': int >= 1}}",
        )
        need(isinstance(self.training, dict), "training", "must be an object")
        need(isinstance(self.metrics, dict), "metrics", "must be an object")
        need(isinstance(self.xsr_version, str) and bool(self.xsr_version), "xsr_version",
             "must be a non-empty string")  # fmt: skip
        need(
            isinstance(self.sha256, str)
            and len(self.sha256) == 64
            and all(c in "0123456789abcdef" for c in self.sha256),
            "sha256",
            "must be 64 lower-case hex digits",
        )
        need(is_int(self.parameters, 0), "parameters", "must be an integer >= 0")
        need(isinstance(self.description, str), "description", "must be a string")
        need(self.kind in KINDS, "kind", f"must be one of {KINDS}")
        need(
            self.kind != "field" or len(self.variables) == 1,
            "kind",
            "'field' needs exactly one (placeholder) variable: a field model takes one field",
        )
        need(
            self.site is None
            or (
                self.kind == "field"
                and isinstance(self.site, dict)
                and isinstance(self.site.get("coords"), dict)
                and isinstance(self.site.get("variables"), dict)
                and all(
                    isinstance(v, dict)
                    and isinstance(v.get("dims"), list)
                    and isinstance(v.get("shape"), list)
                    and len(v["dims"]) == len(v["shape"]) >= 2
                    and all(d in self.site["coords"] for d in v["dims"])
                    for v in self.site["variables"].values()
                )
            ),
            "site",
            "must be null or, on a field model, {'coords': {dim: values}, 'variables': "
            "{name: {'dims': [...], 'shape': [...]}}} with every dim in 'coords'",
        )
        need(
            isinstance(self.card_sha256, str)
            and (
                self.card_sha256 == ""
                or (
                    len(self.card_sha256) == 64
                    and all(c in "0123456789abcdef" for c in self.card_sha256)
                )
            ),
            "card_sha256",
            "must be empty or 64 lower-case hex digits",
        )


def _example() -> dict[str, Any]:
    """A small valid card dict, for the docstring examples."""
    return {
        "name": "demo",
        "arch": "bicubic",
        "config": {"scale": 2, "channels": 1, "conserve": False},
        "scale": 2,
        "window": 1,
        "time_radius": 0,
        "receptive_radius": 2,
        "variables": [{"name": "h", "units": "m", "long_name": "depth"}],
        "normalisation": {"h": {"mean": 0.0, "std": 1.0}},
        "sha256": "0" * 64,
    }
