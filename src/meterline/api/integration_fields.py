"""Request models of what integrations send that changes no amount: a customer's account at a
billing provider (`billing_config`), and a contract's payment terms, CRM opportunity, value and
billing provider configuration.

meterline accepts, stores and shows them back where Metronome's response models have them; no
billing code reads them (meterline sends no invoice to a billing provider). Their shapes are the
official SDK's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from meterline.api.catalog_fields import NonNegativeAmount
from meterline.api.routes.common import StrictModel

Text = Annotated[str, Field(min_length=1, max_length=255)]
AwsRegion = Literal[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
]


class BillingConfigIn(StrictModel):
    """A customer's `billing_config`: who the customer is at its billing provider."""

    billing_provider_customer_id: Text
    billing_provider_type: Literal[
        "aws_marketplace",
        "stripe",
        "netsuite",
        "custom",
        "azure_marketplace",
        "quickbooks_online",
        "workday",
        "gcp_marketplace",
        "metronome",
    ]
    aws_customer_account_id: Text | None = None
    aws_customer_id: Text | None = None
    aws_is_subscription_product: bool | None = None
    aws_product_code: Text | None = None
    aws_region: AwsRegion | None = None
    stripe_collection_method: Literal["charge_automatically", "send_invoice"] | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class BillingProviderConfigurationIn(StrictModel):
    """A contract's `billing_provider_configuration`: an id, or a provider and delivery method."""

    billing_provider: (
        Literal["aws_marketplace", "azure_marketplace", "gcp_marketplace", "stripe", "netsuite"] | None
    ) = None
    billing_provider_configuration_id: Text | None = None
    delivery_method: Literal["direct_to_billing_provider", "aws_sqs", "tackle", "aws_sns"] | None = None

    @model_validator(mode="after")
    def _id_or_provider(self) -> BillingProviderConfigurationIn:
        by_provider = self.billing_provider is not None or self.delivery_method is not None
        if self.billing_provider_configuration_id is not None:
            if by_provider:
                raise ValueError(
                    "give billing_provider_configuration_id, or billing_provider with delivery_method, not both"
                )
        elif self.billing_provider is None or self.delivery_method is None:
            raise ValueError(
                "give billing_provider_configuration_id, or both billing_provider and delivery_method"
            )
        return self

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ContractIntegrationFields(StrictModel):
    """The contract fields integrations send; stored as given, numbers as exact decimal text."""

    net_payment_terms_days: NonNegativeAmount | None = None
    salesforce_opportunity_id: Text | None = None
    total_contract_value: NonNegativeAmount | None = None
    billing_provider_configuration: BillingProviderConfigurationIn | None = None

    def stored(self) -> dict[str, Any] | None:
        given: dict[str, Any] = {
            "net_payment_terms_days": _text(self.net_payment_terms_days),
            "salesforce_opportunity_id": self.salesforce_opportunity_id,
            "total_contract_value": _text(self.total_contract_value),
            "billing_provider_configuration": None
            if self.billing_provider_configuration is None
            else self.billing_provider_configuration.stored(),
        }
        kept = {k: v for k, v in given.items() if v is not None}
        return kept or None


def integration_view(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored fields Metronome's contract terms show (`ContractWithoutAmendments`); a
    contract's billing_provider_configuration is kept, but no v1 response model has it."""
    view: dict[str, Any] = {}
    for name in ("net_payment_terms_days", "total_contract_value"):
        if name in stored:
            view[name] = Decimal(stored[name])
    if "salesforce_opportunity_id" in stored:
        view["salesforce_opportunity_id"] = stored["salesforce_opportunity_id"]
    return view


def _text(value: Any) -> str | None:
    return None if value is None else format(value, "f")
