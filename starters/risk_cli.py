"""`steward risk ...`: the block and allow lists, freight forwarders and
customer-history corrections (issue 15, docs/risk.md), through the HTTP API
(`/v1/risk`) with the caller's API key: who may change what comes from the
key's role, never from a flag.

    steward risk block list [--kind email]
    steward risk block add --kind email --value x@example.net --reason confirmed_fraud
    steward risk block remove --kind email --fingerprint 3f2a... --reason false_positive
    steward risk allow add|remove|list ...
    steward risk forwarders add --line1 ... --city ... --postal-code ... --country US --name ...
    steward risk postal-codes add --country US --postal-code 97230 --name ... --reason ...
    steward risk history show C-100234
    steward risk history correct C-100234 --chargebacks 0 --reason data_correction
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from domain.risk_admin import (
    HISTORY_COUNTERS,
    CustomerHistoryCorrectionBody,
    CustomerHistoryRow,
    ForwarderAddressChange,
    ForwarderPostalCodeChange,
    ForwarderPostalCodeRow,
    ForwarderRow,
    ListEntryChange,
    ListEntryRow,
    RiskChangeResult,
    RiskReason,
)
from domain.risk_rules import IdentityKind, RiskList
from starters.case_cli import console, fail, local_time, parse_key

risk_app = typer.Typer(
    help="What the risk rules read: block and allow lists, freight forwarders, customer history.",
    no_args_is_help=True,
)
block_app = typer.Typer(help="The block list.", no_args_is_help=True)
allow_app = typer.Typer(help="The allow list.", no_args_is_help=True)
forwarders_app = typer.Typer(help="Known freight-forwarder addresses.", no_args_is_help=True)
postal_codes_app = typer.Typer(help="Postal codes where forwarders cluster.", no_args_is_help=True)
history_app = typer.Typer(help="A customer's history counters.", no_args_is_help=True)
risk_app.add_typer(block_app, name="block")
risk_app.add_typer(allow_app, name="allow")
risk_app.add_typer(forwarders_app, name="forwarders")
risk_app.add_typer(postal_codes_app, name="postal-codes")
risk_app.add_typer(history_app, name="history")

Reason = Annotated[RiskReason, typer.Option(help="Why (recorded in the audit trail)")]
Note = Annotated[
    str, typer.Option(help="Free text for the team (kept encrypted, never in the audit)")
]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="At most this many rows")]


def _call(method: str, path: str, body: dict[str, Any] | None = None, params: Any = None) -> Any:
    from starters.api_client import cli_client, cli_errors

    with cli_errors(), cli_client() as api:
        return api.request(method, path, json_body=body, params=params)


def _checked(model: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Validate before anything is contacted: a typo changes nothing."""
    try:
        model.model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in err.errors()
        )
        fail(f"invalid: {problems}", code=2)
    return {k: v for k, v in body.items() if v is not None}


def _show_result(result: RiskChangeResult) -> None:
    if not result.changed:
        console.print(f"[yellow]nothing to change[/]: {result.change} {result.fingerprint}")
        return
    again = " (already applied)" if result.replayed else ""
    console.print(f"[green]{result.change}[/]{again}: {result.fingerprint}")
    console.print(f"  before: {result.before or '—'}")
    console.print(f"  after:  {result.after or '—'}")
    console.print(f"  audit:  {result.audit_entry_id}")


def _change(method: str, path: str, model: Any, body: dict[str, Any]) -> None:
    answer = _call(method, path, _checked(model, body))
    _show_result(RiskChangeResult.model_validate(answer))


# ------------------------------------------------------------------ lists


def _list_commands(app: typer.Typer, risk_list: RiskList) -> None:
    path = f"/v1/risk/lists/{risk_list.value}/entries"

    @app.command("list")
    def show(
        kind: Annotated[IdentityKind | None, typer.Option(help="Only this kind")] = None,
        limit: Limit = 200,
    ) -> None:
        """The entries, newest first (fingerprints, never clear values)."""
        rows = TypeAdapter(list[ListEntryRow]).validate_python(
            _call("GET", path, params={"kind": kind.value if kind else None, "limit": limit})
        )
        table = Table(title=f"{risk_list.value} list", title_justify="left")
        for column in ("kind", "fingerprint", "reason", "added by", "added"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                row.kind, row.fingerprint, row.reason, row.added_by, local_time(row.added_at)
            )
        console.print(table)

    def entry(
        kind: IdentityKind,
        value: str | None,
        fingerprint: str | None,
        reason: RiskReason,
        note: str,
        address: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": kind.value,
            "value": value,
            "fingerprint": fingerprint,
            "address": address,
            "reason": reason.value,
            "note": note,
        }

    @app.command("add")
    def add(
        kind: Annotated[IdentityKind, typer.Option(help="email, card, device, address, customer")],
        reason: Reason,
        value: Annotated[str | None, typer.Option(help="The email, card fingerprint...")] = None,
        fingerprint: Annotated[str | None, typer.Option(help="The entry's fingerprint")] = None,
        note: Note = "",
    ) -> None:
        """Put an identity on the list (an address: by its fingerprint, or through the API)."""
        _change("POST", path, ListEntryChange, entry(kind, value, fingerprint, reason, note))

    @app.command("remove")
    def remove(
        kind: Annotated[IdentityKind, typer.Option(help="email, card, device, address, customer")],
        reason: Reason,
        value: Annotated[str | None, typer.Option(help="The email, card fingerprint...")] = None,
        fingerprint: Annotated[str | None, typer.Option(help="The entry's fingerprint")] = None,
        note: Note = "",
    ) -> None:
        """Take an identity off the list."""
        _change("DELETE", path, ListEntryChange, entry(kind, value, fingerprint, reason, note))


_list_commands(block_app, RiskList.BLOCK)
_list_commands(allow_app, RiskList.ALLOW)


# ------------------------------------------------------- freight forwarders

_ADDRESSES = "/v1/risk/freight-forwarders/addresses"
_POSTAL_CODES = "/v1/risk/freight-forwarders/postal-codes"


def _address(
    line1: str | None, city: str | None, postal_code: str | None, country: str | None
) -> dict[str, Any] | None:
    if line1 is None and city is None and postal_code is None and country is None:
        return None
    return {"line1": line1, "city": city, "postal_code": postal_code, "country": country}


@forwarders_app.command("list")
def forwarders_list(limit: Limit = 200) -> None:
    """Known forwarder addresses (fingerprints), newest first."""
    rows = TypeAdapter(list[ForwarderRow]).validate_python(
        _call("GET", _ADDRESSES, params={"limit": limit})
    )
    table = Table(title="freight forwarders", title_justify="left")
    for column in ("fingerprint", "name", "added"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.fingerprint, row.name, local_time(row.added_at))
    console.print(table)


@forwarders_app.command("add")
def forwarders_add(
    name: Annotated[str, typer.Option(help="The forwarder's business name")],
    line1: Annotated[str, typer.Option()],
    city: Annotated[str, typer.Option()],
    postal_code: Annotated[str, typer.Option()],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. US")],
    reason: Reason = RiskReason.FREIGHT_FORWARDER,
    note: Note = "",
) -> None:
    """Mark an address as a freight forwarder's."""
    body = {
        "address": _address(line1, city, postal_code, country),
        "name": name,
        "reason": reason.value,
        "note": note,
    }
    _change("POST", _ADDRESSES, ForwarderAddressChange, body)


@forwarders_app.command("remove")
def forwarders_remove(
    fingerprint: Annotated[str, typer.Option(help="The address's fingerprint (see list)")],
    reason: Reason,
    note: Note = "",
) -> None:
    """Unmark a forwarder address (a manager key)."""
    body = {"fingerprint": fingerprint, "reason": reason.value, "note": note}
    _change("DELETE", _ADDRESSES, ForwarderAddressChange, body)


@postal_codes_app.command("list")
def postal_codes_list(limit: Limit = 200) -> None:
    """Postal codes where forwarders cluster."""
    rows = TypeAdapter(list[ForwarderPostalCodeRow]).validate_python(
        _call("GET", _POSTAL_CODES, params={"limit": limit})
    )
    table = Table(title="forwarder postal codes", title_justify="left")
    for column in ("country", "postal code", "name", "added"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.country, row.postal_code, row.name, local_time(row.added_at))
    console.print(table)


@postal_codes_app.command("add")
def postal_codes_add(
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. US")],
    postal_code: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option(help="Who clusters there")],
    reason: Reason = RiskReason.FREIGHT_FORWARDER,
    note: Note = "",
) -> None:
    """Mark a postal code where forwarders cluster."""
    body = {
        "country": country,
        "postal_code": postal_code,
        "name": name,
        "reason": reason.value,
        "note": note,
    }
    _change("POST", _POSTAL_CODES, ForwarderPostalCodeChange, body)


@postal_codes_app.command("remove")
def postal_codes_remove(
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2, e.g. US")],
    postal_code: Annotated[str, typer.Option()],
    reason: Reason,
    note: Note = "",
) -> None:
    """Unmark a forwarder postal code (a manager key)."""
    body = {"country": country, "postal_code": postal_code, "reason": reason.value, "note": note}
    _change("DELETE", _POSTAL_CODES, ForwarderPostalCodeChange, body)


# --------------------------------------------------------- customer history

CustomerId = Annotated[
    str, typer.Argument(help="The customer id", metavar="CUSTOMER_ID", callback=parse_key)
]
Count = Annotated[int | None, typer.Option(min=0, max=1_000_000)]


@history_app.command("show")
def history_show(customer_id: CustomerId) -> None:
    """The counters the risk rules read for this customer."""
    row = CustomerHistoryRow.model_validate(
        _call("GET", "/v1/risk/customer-history", params={"customer_id": customer_id})
    )
    table = Table(title=f"customer {row.customer_fingerprint[:16]}…", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name in HISTORY_COUNTERS:
        table.add_row(name, str(getattr(row, name)))
    for currency, amount in sorted(row.returned_value.items()):
        table.add_row(f"returned value {currency}", str(amount))
    console.print(table)


@history_app.command("correct")
def history_correct(
    customer_id: CustomerId,
    reason: Reason,
    completed_orders: Count = None,
    chargebacks: Count = None,
    chargebacks_won: Count = None,
    chargebacks_lost: Count = None,
    returns: Count = None,
    fraud_declines: Count = None,
    failed_deliveries: Count = None,
    note: Note = "",
) -> None:
    """Set some counters (the others stay); a manager key (or order management's)."""
    body = {
        "customer_id": customer_id,
        "completed_orders": completed_orders,
        "chargebacks": chargebacks,
        "chargebacks_won": chargebacks_won,
        "chargebacks_lost": chargebacks_lost,
        "returns": returns,
        "fraud_declines": fraud_declines,
        "failed_deliveries": failed_deliveries,
        "reason": reason.value,
        "note": note,
    }
    _change("POST", "/v1/risk/customer-history/corrections", CustomerHistoryCorrectionBody, body)
