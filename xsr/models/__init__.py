"""xsr models: architectures, the registry, consistency, model files and cards (torch only).

Examples
--------
>>> from xsr.models import get_model, list_models
>>> "fsrcnn" in list_models()
True
"""

from __future__ import annotations

from xsr.models.base import SRModel
from xsr.models.card import ModelCard, ModelFileError
from xsr.models.chain import combination
from xsr.models.consistency import block_mean, conserve
from xsr.models.files import load_model, save_model
from xsr.models.pretrained import PRETRAINED, list_pretrained
from xsr.models.registry import get_model, list_models

__all__ = [
    "PRETRAINED",
    "ModelCard",
    "ModelFileError",
    "SRModel",
    "block_mean",
    "combination",
    "conserve",
    "get_model",
    "list_models",
    "list_pretrained",
    "load_model",
    "save_model",
]
