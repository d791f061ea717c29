"""Steward's configuration, read from the environment (and `.env`).

One object holds every setting: the worker, the API, the CLI and the
composition root (workers/activities.py) read it and pass values down
explicitly; nothing below workers/ reads the environment.

With nothing set, Steward runs on the embedded stack under `data_dir`.
`TEMPORAL_ADDRESS` and `DATABASE_URL` point it at external servers instead.
Every other variable is `STEWARD_<NAME>`; each field names its variable
(`validation_alias`) so a renamed field never renames what a deployment sets.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.chargeback import DisputeDefault, DisputePolicy
from domain.evidence import DEFAULT_CCTV_RETENTION
from domain.money_thresholds import dispute_accept_below
from workers.event_loop import EventLoopKind

# The variables outside the STEWARD_ prefix: the names Temporal's and
# PostgreSQL's own tooling use.
UNPREFIXED_VARIABLES = frozenset({"TEMPORAL_ADDRESS", "DATABASE_URL", "TEMPORAL_NAMESPACE"})


class Settings(BaseSettings):
    # No input in validation errors: they would print API keys and secrets.
    model_config = SettingsConfigDict(
        env_file=".env", env_prefix="STEWARD_", extra="ignore", hide_input_in_errors=True
    )

    # External servers; None means "use the embedded stack".
    temporal_address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")

    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    task_queue: str = Field(default="steward", validation_alias="STEWARD_TASK_QUEUE")
    data_dir: Path = Field(default=Path(".steward"), validation_alias="STEWARD_DATA_DIR")

    # Embedded stack ports, all bound to loopback.
    temporal_port: int = Field(default=7233, validation_alias="STEWARD_TEMPORAL_PORT")
    temporal_ui_port: int = Field(default=8233, validation_alias="STEWARD_TEMPORAL_UI_PORT")
    postgres_port: int = Field(default=55432, validation_alias="STEWARD_POSTGRES_PORT")
    api_host: str = Field(default="127.0.0.1", validation_alias="STEWARD_API_HOST")
    api_port: int = Field(default=8400, validation_alias="STEWARD_API_PORT")

    # Payload encryption keyring: a JSON file {"active": kid, "keys": {kid: base64 key}}.
    # Created with a fresh dev key on first start when absent.
    codec_keyring_path: Path | None = Field(default=None, validation_alias="STEWARD_CODEC_KEYRING")
    # Decision signing keyring (workers/decision_signing.py), same format, a
    # separate file shared by the API and the workers only: default
    # <data dir>/decision-keyring.json, created on first start when absent.
    decision_keyring_path: Path | None = Field(
        default=None, validation_alias="STEWARD_DECISION_KEYRING"
    )
    # Master keyring of the personal-data store (store/personal_data.py), same
    # format, a separate file: default <data dir>/personal-data-keyring.json.
    personal_data_keyring_path: Path | None = Field(
        default=None, validation_alias="STEWARD_PERSONAL_DATA_KEYRING"
    )

    # API keys: "key:actor:role,key:actor:role". The embedded stack seeds dev keys.
    api_keys: str = Field(default="", validation_alias="STEWARD_API_KEYS")
    # Shared secret upstream webhooks (carrier scans, 3PL QC reports) send in
    # `X-Steward-Webhook-Secret` on top of their API key; empty: not checked.
    webhook_secret: str = Field(default="", validation_alias="STEWARD_WEBHOOK_SECRET")

    # Simulated outside world: latency (ms) and failure rates (0..1) for the ports.
    sim_latency_ms: int = Field(default=0, validation_alias="STEWARD_SIM_LATENCY_MS")
    sim_failure_rate: float = Field(default=0.0, validation_alias="STEWARD_SIM_FAILURE_RATE")
    # Fault windows switched from outside (activities/simulated.py: FaultControl),
    # written by the chaos run (bench/chaos); unset: none.
    sim_control_file: Path | None = Field(default=None, validation_alias="STEWARD_SIM_CONTROL_FILE")

    log_level: str = Field(default="INFO", validation_alias="STEWARD_LOG_LEVEL")
    # auto: human-readable lines on a terminal, JSON lines otherwise (workers/logging.py).
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="STEWARD_LOG_FORMAT"
    )
    # One log line per HTTP request at INFO; off, only failed requests (4xx, 5xx)
    # are logged at INFO and the others at DEBUG.
    access_log: bool = Field(default=False, validation_alias="STEWARD_ACCESS_LOG")

    # Allocations between two young-generation garbage collections in a worker
    # process (Python's default is 700); 0 leaves the interpreter's defaults.
    # See workers/worker.py: tune_garbage_collector.
    gc_threshold: int = Field(default=50_000, ge=0, validation_alias="STEWARD_GC_THRESHOLD")
    # The event loop `steward worker` and `steward up` run on: uvloop (libuv)
    # or the standard library's. See workers/event_loop.py.
    event_loop: EventLoopKind = Field(default="uvloop", validation_alias="STEWARD_EVENT_LOOP")

    # Networks whose callers may use the codec endpoint without an API key,
    # besides loopback: the Temporal UI's browser cannot send one. In compose the
    # browser's calls reach the API through Docker's gateway, e.g. "172.16.0.0/12".
    codec_trusted_networks: str = Field(
        default="", validation_alias="STEWARD_CODEC_TRUSTED_NETWORKS"
    )

    # Provider webhooks. Secrets are comma separated so a rolled secret and its
    # successor are both valid for the overlap (Stripe keeps the old one valid
    # up to 24 h). EasyPost signs its tracker events with one secret; empty:
    # its webhook refuses every event.
    stripe_webhook_secrets: str = Field(
        default="", validation_alias="STEWARD_STRIPE_WEBHOOK_SECRET"
    )
    stripe_tolerance_seconds: int = Field(
        default=300, ge=1, validation_alias="STEWARD_STRIPE_TOLERANCE_SECONDS"
    )
    adyen_hmac_keys: str = Field(default="", validation_alias="STEWARD_ADYEN_HMAC_KEY")
    easypost_webhook_secret: str = Field(
        default="", validation_alias="STEWARD_EASYPOST_WEBHOOK_SECRET"
    )

    # Provider credentials and endpoints (the payment and dispute adapters share
    # them). An empty base URL is the SDK's own endpoint; tests point them at a
    # local fake server. Adyen's environment picks its test or live endpoints.
    stripe_api_key: str = Field(default="", validation_alias="STEWARD_STRIPE_API_KEY")
    stripe_api_base: str = Field(default="", validation_alias="STEWARD_STRIPE_API_BASE")
    adyen_api_key: str = Field(default="", validation_alias="STEWARD_ADYEN_API_KEY")
    adyen_environment: Literal["test", "live"] = Field(
        default="test", validation_alias="STEWARD_ADYEN_ENVIRONMENT"
    )
    adyen_merchant_account: str = Field(
        default="", validation_alias="STEWARD_ADYEN_MERCHANT_ACCOUNT"
    )
    adyen_disputes_url: str = Field(default="", validation_alias="STEWARD_ADYEN_DISPUTES_URL")
    # Which dispute providers are answered through their real API
    # (activities/disputes_stripe.py, disputes_adyen.py): "simulated" (the
    # default) or a comma separated list such as "stripe,adyen".
    dispute_responders: str = Field(
        default="simulated", validation_alias="STEWARD_DISPUTE_RESPONDERS"
    )
    # EasyPost (activities/carrier_easypost.py): the carriers whose reship
    # labels, trackers and claims go through EasyPost ("ups,dhl"; empty: all
    # simulated), and the carrier of return labels ("ups"; empty: simulated).
    easypost_api_key: str = Field(default="", validation_alias="STEWARD_EASYPOST_API_KEY")
    easypost_api_base: str = Field(default="", validation_alias="STEWARD_EASYPOST_API_BASE")
    easypost_carriers: str = Field(default="", validation_alias="STEWARD_EASYPOST_CARRIERS")
    easypost_return_carrier: str = Field(
        default="", validation_alias="STEWARD_EASYPOST_RETURN_CARRIER"
    )
    # The warehouse's EasyPost Address id (adr_...): where parcels leave from
    # and where returns go.
    easypost_warehouse_address_id: str = Field(
        default="", validation_alias="STEWARD_EASYPOST_WAREHOUSE_ADDRESS_ID"
    )
    # The parcel booked for one unit: "LxWxH" in inches and the weight in ounces.
    easypost_parcel_dimensions_in: str = Field(
        default="14x10x6",
        pattern=r"^\s*\d+(\.\d+)?\s*[xX]\s*\d+(\.\d+)?\s*[xX]\s*\d+(\.\d+)?\s*$",
        validation_alias="STEWARD_EASYPOST_PARCEL_DIMENSIONS_IN",
    )
    easypost_parcel_weight_oz: float = Field(
        default=48.0, gt=0, validation_alias="STEWARD_EASYPOST_PARCEL_WEIGHT_OZ"
    )
    # EasyPost's claims API requires a contact email on every claim.
    easypost_claim_email: str = Field(default="", validation_alias="STEWARD_EASYPOST_CLAIM_EMAIL")

    # Payment providers (docs/payments.md). The names an order may carry in
    # `payment.provider` that this deployment serves, comma separated; an order
    # naming another fails with UnknownPaymentProvider. `simulated` moves no
    # money: production lists only real providers.
    payment_providers: str = Field(
        default="simulated", validation_alias="STEWARD_PAYMENT_PROVIDERS"
    )
    # One HTTP call to a payment provider; under the 30 s an activity attempt has.
    payment_http_timeout_seconds: float = Field(
        default=20, gt=0, le=28, validation_alias="STEWARD_PAYMENT_HTTP_TIMEOUT_SECONDS"
    )
    # Stripe's mode: the API key (STEWARD_STRIPE_API_KEY, shared with the
    # dispute adapter) must be a secret (sk_) or restricted (rk_) key of this
    # mode; test and live keys reach the same endpoint, the key decides.
    stripe_mode: Literal["test", "live"] = Field(
        default="test", validation_alias="STEWARD_STRIPE_MODE"
    )
    # Adyen's Checkout endpoint for the payment adapter: STEWARD_ADYEN_ENVIRONMENT's
    # test endpoint, or live with the account's live URL prefix;
    # STEWARD_ADYEN_CHECKOUT_URL replaces either (a proxy, a local fake;
    # `/v<version>` is appended).
    adyen_live_endpoint_prefix: str = Field(
        default="", validation_alias="STEWARD_ADYEN_LIVE_ENDPOINT_PREFIX"
    )
    adyen_checkout_url: str = Field(default="", validation_alias="STEWARD_ADYEN_CHECKOUT_URL")
    adyen_checkout_api_version: int = Field(
        default=71, ge=68, validation_alias="STEWARD_ADYEN_CHECKOUT_API_VERSION"
    )
    # How long a capture, cancel or refund waits for Adyen's notification
    # before it is reported refused (code adyen_outcome_not_received) for a
    # person to check in Adyen's Customer Area.
    adyen_outcome_timeout_hours: float = Field(
        default=24, gt=0, validation_alias="STEWARD_ADYEN_OUTCOME_TIMEOUT_HOURS"
    )

    # The chargeback deadline engine's policy (domain/chargeback/deadlines.py).
    dispute_safety_buffer_hours: float = Field(
        default=12, ge=0, validation_alias="STEWARD_DISPUTE_SAFETY_BUFFER_HOURS"
    )
    dispute_reminder_hours: str = Field(
        default="72,24", validation_alias="STEWARD_DISPUTE_REMINDER_HOURS"
    )
    dispute_accept_below_minor: int = Field(
        default=5_000, ge=0, validation_alias="STEWARD_DISPUTE_ACCEPT_BELOW_MINOR"
    )
    dispute_default_action: DisputeDefault = Field(
        default=DisputeDefault.SMART, validation_alias="STEWARD_DISPUTE_DEFAULT"
    )

    # How long the (simulated) warehouse keeps CCTV footage, in days.
    cctv_retention_days: int = Field(
        default=DEFAULT_CCTV_RETENTION.days, ge=1, validation_alias="STEWARD_CCTV_RETENTION_DAYS"
    )

    # Reports (docs/reports.md). Files go under <data dir>/reports unless
    # STEWARD_REPORTS_DIR names another directory (a mounted object store).
    reports_dir_path: Path | None = Field(default=None, validation_alias="STEWARD_REPORTS_DIR")
    # Days and weeks are cut in this time zone (IANA name).
    report_timezone: str = Field(default="UTC", validation_alias="STEWARD_REPORT_TIMEZONE")
    # The schedules the worker keeps: "daily,weekly", one of them, or empty for none.
    report_cadences: str = Field(
        default="daily,weekly",
        pattern=r"^\s*((daily|weekly)\s*(,\s*(daily|weekly)\s*)*)?$",
        validation_alias="STEWARD_REPORT_CADENCES",
    )
    # The distribution list told of each scheduled run: emails, comma separated.
    report_recipients: str = Field(default="", validation_alias="STEWARD_REPORT_RECIPIENTS")
    # Live metrics: the worker's Prometheus endpoint (Steward's own metrics) and
    # the Temporal SDK's runtime exporter; 0 turns either off. The API serves
    # /metrics on its own port.
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, validation_alias="STEWARD_WORKER_METRICS_PORT"
    )
    temporal_metrics_port: int = Field(
        default=9465, ge=0, le=65535, validation_alias="STEWARD_TEMPORAL_METRICS_PORT"
    )
    metrics_host: str = Field(default="127.0.0.1", validation_alias="STEWARD_METRICS_HOST")

    # The ops desk's chat (docs/ops_request.md): Slack's signing secret checks
    # the slash commands and shortcuts; with a bot token the desk answers in
    # Slack (slack_sdk's Web API), without one in the simulated chat.
    slack_signing_secret: str = Field(default="", validation_alias="STEWARD_SLACK_SIGNING_SECRET")
    slack_bot_token: str = Field(default="", validation_alias="STEWARD_SLACK_BOT_TOKEN")
    slack_api_url: str = Field(default="", validation_alias="STEWARD_SLACK_API_URL")
    ops_escalation_channel: str = Field(
        default="ops-escalations", validation_alias="STEWARD_OPS_ESCALATION_CHANNEL"
    )

    @model_validator(mode="after")
    def _payment_providers_have_credentials(self) -> Self:
        """A start-up error naming the variable a configured provider lacks."""
        problems = payment_settings_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _adapters_have_settings(self) -> Self:
        """The same for the dispute and carrier adapters (adapter_settings_problems)."""
        problems = adapter_settings_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def payment_provider_names(self) -> list[str]:
        return [p.strip() for p in self.payment_providers.split(",") if p.strip()]

    @property
    def adyen_outcome_timeout(self) -> timedelta:
        return timedelta(hours=self.adyen_outcome_timeout_hours)

    @property
    def keyring_path(self) -> Path:
        return self.codec_keyring_path or (self.data_dir / "codec-keyring.json")

    @property
    def personal_data_keyring(self) -> Path:
        return self.personal_data_keyring_path or (self.data_dir / "personal-data-keyring.json")

    @property
    def decision_keyring_file(self) -> Path:
        return self.decision_keyring_path or (self.data_dir / "decision-keyring.json")

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def database_dsn(self) -> str:
        return self.database_url or f"postgresql://postgres@127.0.0.1:{self.postgres_port}/steward"

    @property
    def api_base_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def stripe_secrets(self) -> list[str]:
        return [s.strip() for s in self.stripe_webhook_secrets.split(",") if s.strip()]

    @property
    def adyen_keys(self) -> list[str]:
        return [k.strip() for k in self.adyen_hmac_keys.split(",") if k.strip()]

    @property
    def real_dispute_responders(self) -> set[str]:
        """The dispute providers answered through their real API."""
        names = {p.strip().lower() for p in self.dispute_responders.split(",") if p.strip()}
        return names - {"simulated"}

    @property
    def easypost_carrier_names(self) -> set[str]:
        return {c.strip().lower() for c in self.easypost_carriers.split(",") if c.strip()}

    @property
    def cctv_retention(self) -> timedelta:
        return timedelta(days=self.cctv_retention_days)

    @property
    def reports_dir(self) -> Path:
        return self.reports_dir_path or (self.data_dir / "reports")

    @property
    def report_cadence_names(self) -> list[str]:
        return [c.strip() for c in self.report_cadences.split(",") if c.strip()]

    @property
    def report_recipient_list(self) -> list[str]:
        return [r.strip() for r in self.report_recipients.split(",") if r.strip()]

    def dispute_policy(self) -> DisputePolicy:
        """The policy every new chargeback case starts with (it travels in its input)."""
        return DisputePolicy(
            safety_buffer=timedelta(hours=self.dispute_safety_buffer_hours),
            reminder_offsets=[
                timedelta(hours=float(h))
                for h in self.dispute_reminder_hours.split(",")
                if h.strip()
            ],
            accept_below_minor=self.dispute_accept_below_minor,
            # Per currency, in proportion to the setting (in EUR cents).
            accept_below_by_currency=dispute_accept_below(self.dispute_accept_below_minor),
            default_action=self.dispute_default_action,
        )


_STRIPE_KEY_PREFIXES = {"test": ("sk_test_", "rk_test_"), "live": ("sk_live_", "rk_live_")}


def payment_settings_problems(settings: Settings) -> list[str]:
    """What keeps the configured payment providers from working, each naming
    its variable (empty: nothing)."""
    names = settings.payment_provider_names
    known = ("simulated", "stripe", "adyen")
    problems = [
        f"STEWARD_PAYMENT_PROVIDERS: unknown provider {name!r} (known: {', '.join(known)})"
        for name in names
        if name not in known
    ]
    if not names:
        problems.append("STEWARD_PAYMENT_PROVIDERS: names no provider")
    stripe_key = settings.stripe_api_key
    if "stripe" in names and not stripe_key:
        problems.append(
            "STEWARD_STRIPE_API_KEY: required when STEWARD_PAYMENT_PROVIDERS names stripe"
        )
    if (
        "stripe" in names
        and stripe_key
        and not stripe_key.startswith(_STRIPE_KEY_PREFIXES[settings.stripe_mode])
    ):
        problems.append(
            f"STEWARD_STRIPE_API_KEY: not a {settings.stripe_mode} secret or restricted key "
            f"(expected {' or '.join(_STRIPE_KEY_PREFIXES[settings.stripe_mode])}...; "
            "STEWARD_STRIPE_MODE says which)"
        )
    if "adyen" in names:
        for variable, value in (
            ("STEWARD_ADYEN_API_KEY", settings.adyen_api_key),
            ("STEWARD_ADYEN_MERCHANT_ACCOUNT", settings.adyen_merchant_account),
            # Without it every notification is refused: no capture, cancel or
            # refund would ever learn its outcome.
            ("STEWARD_ADYEN_HMAC_KEY", settings.adyen_hmac_keys.strip()),
        ):
            if not value:
                problems.append(f"{variable}: required when STEWARD_PAYMENT_PROVIDERS names adyen")
        if (
            settings.adyen_environment == "live"
            and not settings.adyen_checkout_url
            and not settings.adyen_live_endpoint_prefix
        ):
            problems.append(
                "STEWARD_ADYEN_LIVE_ENDPOINT_PREFIX: required when STEWARD_ADYEN_ENVIRONMENT "
                "is live (the prefix of the account's live URLs, Customer Area > Developers > "
                "API URLs)"
            )
    return problems


def adapter_settings_problems(settings: Settings) -> list[str]:
    """What keeps the configured dispute responders and EasyPost from working,
    each naming its variable (empty: nothing). workers/activities.py checks
    the same when it builds them."""
    problems: list[str] = []
    wanted = settings.real_dispute_responders
    known = ("simulated", "stripe", "adyen")
    problems += [
        f"STEWARD_DISPUTE_RESPONDERS: unknown provider {name!r} (known: {', '.join(known)})"
        for name in sorted(wanted)
        if name not in known
    ]
    needs: list[tuple[str, str, str]] = []
    if "stripe" in wanted:
        needs.append(
            ("STEWARD_STRIPE_API_KEY", settings.stripe_api_key, "DISPUTE_RESPONDERS names stripe")
        )
    if "adyen" in wanted:
        needs += [
            ("STEWARD_ADYEN_API_KEY", settings.adyen_api_key, "DISPUTE_RESPONDERS names adyen"),
            (
                "STEWARD_ADYEN_MERCHANT_ACCOUNT",
                settings.adyen_merchant_account,
                "DISPUTE_RESPONDERS names adyen",
            ),
        ]
    easypost_by = (
        "EASYPOST_CARRIERS is set"
        if settings.easypost_carrier_names
        else "EASYPOST_RETURN_CARRIER is set"
        if settings.easypost_return_carrier.strip()
        else ""
    )
    if easypost_by:
        needs += [
            ("STEWARD_EASYPOST_API_KEY", settings.easypost_api_key, easypost_by),
            (
                "STEWARD_EASYPOST_WAREHOUSE_ADDRESS_ID",
                settings.easypost_warehouse_address_id,
                easypost_by,
            ),
            ("STEWARD_EASYPOST_CLAIM_EMAIL", settings.easypost_claim_email, easypost_by),
        ]
    problems += [
        f"{variable}: required when STEWARD_{because}"
        for variable, value, because in needs
        if not value.strip()
    ]
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
