"""Re-stamp the shipped model cards (``xsr/models/weights/*.json``) with their ``card_sha256``.

Run it after a deliberate edit of a shipped card (new metrics, a corrected description); the
weights are not touched and nothing is retrained. Each card is validated, its weights must
match its ``sha256``, and every model is loaded afterwards (which verifies the new stamp).

Usage: ``python scripts/stamp_shipped_cards.py``
"""

from __future__ import annotations

from xsr.models.files import load_model, stamp_card
from xsr.models.pretrained import PRETRAINED, pretrained_path


def main() -> None:
    """Stamp every card listed in ``PRETRAINED`` and check that each model loads."""
    for name in sorted(PRETRAINED):
        card_path = stamp_card(pretrained_path(name))
        load_model(name)
        print(f"stamped {card_path}")


if __name__ == "__main__":
    main()
