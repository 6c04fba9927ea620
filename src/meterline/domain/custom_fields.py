"""Custom fields: key/value strings on Metronome's entities, and the rules they follow.

Which entities meterline has, by Metronome's names for them; keys and values within Metronome's
limits (100 and 200 characters).
"""

from __future__ import annotations

from meterline.domain.errors import InvalidInput

KEY_MAX_CHARS = 100
VALUE_MAX_CHARS = 200

# The entities of the SDK's list that meterline has: contract products are meterline's products,
# contract credits its credits (contract-level and customer-level alike), commits its prepaid and
# postpaid commits.
SUPPORTED = frozenset(
    {
        "alert",
        "billable_metric",
        "commit",
        "contract",
        "contract_credit",
        "contract_product",
        "customer",
        "rate_card",
    }
)
# Why an entity the SDK names is refused, where a hint helps more than "meterline has none".
_REFUSALS = {
    "product": "is a plan product, which meterline does not have; its products are contract products "
    "(entity contract_product)",
    "invoice": "custom fields on invoices are not supported yet",
}


def check_entity(entity: str, field: str = "entity") -> None:
    """Refuse entities meterline does not have, naming the value."""
    if entity in SUPPORTED:
        return
    reason = _REFUSALS.get(entity, f"meterline has no {entity} objects")
    supported = ", ".join(sorted(SUPPORTED))
    raise InvalidInput(f"{field}: {entity!r} {reason}; custom fields apply to {supported}")
