"""`steward orders status|hold|release-hold|change-address|special-delivery`,
`steward orders simulate-warehouse` and `steward qc list|show|decide`
(issue 16: fulfilment).

Registered on the main `steward` app in starters/cli.py. Every command goes
through the HTTP API (`/v1/orders/{id}/status`, `/v1/fulfilments/...`) with
the caller's API key: who acts, and in which role, comes from the key, never
from a flag. What was typed is validated before anything is contacted. The
exception is `simulate-warehouse`, which is the outside world (the simulated
warehouse), not an operator: like `steward simulate` it reaches PostgreSQL and
Temporal directly and feeds the same intake as the warehouse webhook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.audit import CaseRow
from domain.fulfilment import (
    FulfilmentView,
    HoldReason,
    QcOutcome,
    SpecialDeliveryInput,
    SpecialDeliveryKind,
    address_error,
)
from domain.orders import Address
from starters.case_cli import (
    LimitOption,
    api_get,
    api_post,
    cases_table,
    console,
    fail,
    parse_key,
    parse_order_id,
    status_style,
)
from store.order_status import OrderStatusView

orders_app = typer.Typer(
    help="Orders in the warehouse: status, holds, address changes, special deliveries.",
    no_args_is_help=True,
)
qc_app = typer.Typer(
    help="Outbound QC: list the checks waiting, show one, decide.", no_args_is_help=True
)

OrderArg = Annotated[str, typer.Argument(help="The order id", callback=parse_order_id)]
NoteOption = Annotated[str, typer.Option("--note", help="Why (goes to the audit trail)")]


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def status_panel(view: OrderStatusView) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    status = view.fulfilment_status or "not in the warehouse"
    facts.add_row("Warehouse", Text(status, style=status_style(status)))
    for state in view.states:
        facts.add_row("", f"{state.status:<18} {_when(state.at)}  ({state.actor})")
    facts.add_row(
        "Holds",
        ", ".join(f"{h.reason} ({h.handle}, by {h.placed_by})" for h in view.active_holds)
        or "none",
    )
    for shipment in view.shipments:
        facts.add_row(
            "Parcel",
            f"{shipment.carrier} {shipment.tracking_number}: {shipment.status}, "
            f"last scan {_when(shipment.last_scan_at)}",
        )
    for case in view.cases:
        facts.add_row(
            case.process, f"{case.case_id}: {case.status} (updated {_when(case.updated_at)})"
        )
    facts.add_row("", "")
    facts.add_row("Answer", view.summary)
    return Panel(facts, title=f"Order {view.order_id}", expand=False)


def fulfilment_panel(state: FulfilmentView) -> Panel:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("Status", Text(state.status.value, style=status_style(state.status.value)))
    facts.add_row("Site", state.site)
    facts.add_row(
        "Holds",
        ", ".join(f"{h.reason} ({h.handle})" for h in state.active_holds) or "none",
    )
    if state.shipping_address is not None:
        # Read back from the personal-data store by the API ([erased] once erased).
        facts.add_row("Ship to", Text(_address_line(state.shipping_address)))
    if state.address_changes:
        last = state.address_changes[-1]
        fee = f", fee {last.fee_minor}" if last.fee_minor else ""
        facts.add_row("Address change", f"{last.outcome} ({last.country_after}{fee})")
    if state.special_delivery:
        facts.add_row("Delivery", state.special_delivery.kind.value)
    if state.qc:
        facts.add_row(
            "Outbound QC",
            f"{', '.join(state.qc.reasons)} · {state.qc.outcome or 'waiting'}"
            + (f" · awaits {state.awaited_role}" if state.awaited_role else ""),
        )
    if state.tracking_number:
        facts.add_row("Parcel", f"{state.carrier} {state.tracking_number}")
    return Panel(facts, title=f"Fulfilment {state.order_id}", expand=False)


def _address_line(address: Address) -> str:
    parts = (address.line1, address.line2, address.postal_code, address.city, address.region)
    return ", ".join(p for p in parts if p) + f" ({address.country})"


def _post(order_id: str, path: str, body: dict[str, Any]) -> None:
    state = api_post(f"/v1/fulfilments/{order_id}{path}", body, FulfilmentView)
    console.print(fulfilment_panel(state))


@orders_app.command("status")
def order_status(order_id: OrderArg) -> None:
    """One answer for customer service: warehouse state with times, holds, parcel, cases."""
    view = api_get(f"/v1/orders/{order_id}/status", OrderStatusView)
    console.print(status_panel(view))


@orders_app.command("hold")
def hold(
    order_id: OrderArg,
    reason: Annotated[HoldReason, typer.Option("--reason", help="Why the order is held")],
    note: NoteOption = "",
    handle: Annotated[
        str | None,
        typer.Option(
            "--handle",
            help="Your own handle (a repeat places it once)",
            callback=lambda v: v and parse_key(v),
        ),
    ] = None,
) -> None:
    """Place a hold: the warehouse does not pick the order while it is active."""
    body: dict[str, Any] = {"reason": reason.value, "note": note}
    if handle:
        body["handle"] = handle
    _post(order_id, "/holds", body)


@orders_app.command("release-hold")
def release_hold(
    order_id: OrderArg,
    handle: Annotated[str, typer.Argument(help="The hold's handle (see `orders status`)")],
    note: NoteOption = "",
) -> None:
    """Release a hold (the roles allowed depend on its reason)."""
    parse_key(handle)
    _post(order_id, f"/holds/{handle}/release", {"note": note})


@orders_app.command("change-address")
def change_address(
    order_id: OrderArg,
    line1: Annotated[str, typer.Option("--line1")],
    city: Annotated[str, typer.Option("--city")],
    postal_code: Annotated[str, typer.Option("--postal-code")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166 code, e.g. FR")],
    line2: Annotated[str | None, typer.Option("--line2")] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="State/province where needed")
    ] = None,
    note: NoteOption = "",
) -> None:
    """Change the shipping address (before packing; from packing a carrier intercept)."""
    try:
        address = Address(
            line1=line1,
            line2=line2,
            city=city,
            postal_code=postal_code,
            region=region,
            country=country.upper(),
        )
    except ValidationError as err:
        fail(f"address: {err.errors()[0]['loc'][0]}: {err.errors()[0]['msg']}")
    if (error := address_error(address)) is not None:
        fail(error)
    _post(order_id, "/address", {"address": address.model_dump(mode="json"), "note": note})


@orders_app.command("special-delivery")
def special_delivery(
    order_id: OrderArg,
    kind: Annotated[SpecialDeliveryKind, typer.Option("--kind")],
    window_start: Annotated[
        datetime | None, typer.Option("--from", help="Timed: window start (ISO, UTC)")
    ] = None,
    window_end: Annotated[
        datetime | None, typer.Option("--until", help="Timed: window end")
    ] = None,
    carrier: Annotated[str | None, typer.Option("--carrier")] = None,
    service: Annotated[str | None, typer.Option("--service")] = None,
    store_id: Annotated[str | None, typer.Option("--store")] = None,
    note: NoteOption = "",
) -> None:
    """Arrange a timed, named-carrier, signature or in-store delivery."""
    from datetime import UTC

    try:
        change = SpecialDeliveryInput(
            kind=kind,
            window_start=window_start.replace(tzinfo=window_start.tzinfo or UTC)
            if window_start
            else None,
            window_end=window_end.replace(tzinfo=window_end.tzinfo or UTC) if window_end else None,
            carrier=carrier,
            service=service,
            store_id=store_id,
            note=note,
        )
    except ValidationError as err:
        fail(f"{err.errors()[0]['msg']}")
    _post(
        order_id,
        "/special-delivery",
        change.model_dump(mode="json", exclude_none=True, exclude={"actor", "role"}),
    )


@orders_app.command("simulate-warehouse")
def simulate_warehouse(
    minutes: Annotated[
        float, typer.Option(min=0.1, max=1440.0, help="How long to run (wall-clock minutes)")
    ] = 5.0,
    speed: Annotated[
        float,
        typer.Option(
            min=1.0,
            max=10_000.0,
            help="Warehouse time per wall-clock time: 600 runs a 10-hour warehouse day a minute",
        ),
    ] = 600.0,
) -> None:
    """Run the simulated warehouse against `steward up` (or DATABASE_URL and
    TEMPORAL_ADDRESS): every released order moves allocated, picking,
    packing, packed, handed_to_carrier on its site's timeline (pick and pack
    durations, the daily carrier cut-off), each event through the warehouse
    webhook's intake; a held order is not picked. Ctrl-C stops it."""
    import asyncio
    import contextlib
    import signal
    from datetime import timedelta

    from domain.fulfilment import WarehouseEvent
    from starters import fulfilment_simulator
    from starters.case_cli import run_command
    from starters.client import connect
    from store.db import create_pool
    from workers.settings import get_settings

    settings = get_settings()

    def say(event: WarehouseEvent, routed: bool) -> None:
        parcel = f" · {event.carrier} {event.tracking_number}" if event.tracking_number else ""
        unrouted = "" if routed else " [dim](no running fulfilment: recorded only)[/dim]"
        console.print(
            f"{event.occurred_at:%a %H:%M} warehouse time · order {event.order_id} · "
            f"[bold]{event.kind}[/bold]{parcel}{unrouted}"
        )

    async def main() -> fulfilment_simulator.WarehouseReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        client = await connect(settings)
        pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
        try:
            return await fulfilment_simulator.run(
                client,
                pool,
                duration=timedelta(minutes=minutes),
                speed=speed,
                on_event=say,
                stop=stop,
            )
        finally:
            await pool.close()

    console.print(
        f"simulated warehouse: {minutes:g} min at {speed:g}x warehouse time (Ctrl-C stops)"
    )
    report = run_command(main())
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.by_kind.items())) or "none"
    console.print(
        f"{report.events} warehouse events ({kinds}); {report.delivered} to running fulfilments"
    )


@qc_app.command("list")
def qc_list(limit: LimitOption = 50) -> None:
    """Fulfilments, most recently changed first (the QC tasks are in `steward tasks`)."""
    rows = api_get("/v1/fulfilments", list[CaseRow], {"limit": limit})
    console.print(cases_table("Fulfilments", rows))


@qc_app.command("show")
def qc_show(order_id: OrderArg) -> None:
    """A fulfilment with its QC verdict and who is awaited."""
    console.print(fulfilment_panel(api_get(f"/v1/fulfilments/{order_id}", FulfilmentView)))


@qc_app.command("decide")
def qc_decide(
    order_id: OrderArg,
    outcome: Annotated[QcOutcome, typer.Argument(help="pass, fail, cancel_refund or wait")],
    check: Annotated[
        list[str] | None, typer.Option("--check", help="A checklist item checked (repeat)")
    ] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="The unit's serial number")] = None,
    photo: Annotated[
        list[str] | None, typer.Option("--photo", help="A photo reference (repeat)")
    ] = None,
    note: NoteOption = "",
) -> None:
    """Record warehouse QA's result (or the senior QA coordinator's decision)."""
    body: dict[str, Any] = {
        "outcome": outcome.value,
        "checklist": check or [],
        "photo_refs": photo or [],
        "note": note,
    }
    if serial:
        body["serial_number"] = serial
    _post(order_id, "/qc-decision", body)
