"""The evidence document Steward sends with a contested dispute.

Steward's evidence is text it recorded itself (activities/disputes.py: the
order and its review, authorisation results, delivery scans, the refund
policy, the coordinator's note). The providers want documents: Stripe a file
upload (PDF, JPEG or PNG) referenced from the dispute's evidence, Adyen
base64 defence documents (PDF, JPG or TIFF). This module renders the items as
a plain PDF - one page per 60 lines, the standard Helvetica font, no
dependency - and checks it against the provider's size limit before anything
is sent, so an oversized document is a clear refusal instead of the
provider's 400 after the upload.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from activities.disputes import DisputeResponseRefusedError

DOCUMENT_TOO_LARGE = "document_too_large"
MB = 1024 * 1024

_LINE_WIDTH = 95
_LINES_PER_PAGE = 60
_KIND_TITLES = {
    "order_and_review": "Order and review",
    "authorisation_results": "Authorisation results",
    "proof_of_delivery": "Proof of delivery",
    "carrier_scans": "Carrier scans",
    "cctv_clip": "Packing-station CCTV clip",
    "customer_communication": "Customer communication",
    "refund_policy": "Refund policy",
    "prior_orders": "Prior orders",
    "coordinator_note": "Coordinator's note",
}


def kind_title(kind: str) -> str:
    return _KIND_TITLES.get(kind, kind.replace("_", " ").capitalize())


def evidence_lines(
    dispute_id: str, documents: Iterable[Mapping[str, Any]], note: str = ""
) -> list[str]:
    """The statement's text: one section per evidence item, then the note."""
    lines = [f"Dispute {dispute_id}: evidence assembled by Steward", ""]
    for doc in documents:
        lines.append(kind_title(str(doc.get("kind", ""))))
        lines.extend(_wrap(str(doc.get("summary", ""))))
        if doc.get("reference"):
            lines.append(f"  reference: {doc['reference']}")
        lines.append("")
    if note and not any(d.get("kind") == "coordinator_note" for d in documents):
        lines.append(kind_title("coordinator_note"))
        lines.extend(_wrap(note))
    return lines


def _wrap(text: str) -> list[str]:
    out: list[str] = []
    for paragraph in text.splitlines() or [""]:
        out.extend(
            textwrap.wrap(paragraph, _LINE_WIDTH, initial_indent="  ", subsequent_indent="  ")
            or [""]
        )
    return out


def _pdf_text(line: str) -> bytes:
    # The standard fonts speak WinAnsi (close to Latin-1); anything else
    # becomes "?". Backslash and parentheses are escaped inside a PDF string.
    raw = line.replace("\u2192", "->").encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def render_pdf(lines: list[str]) -> bytes:
    """A valid PDF 1.4 of `lines` on A4 pages (cross-reference table and all)."""
    pages = [lines[i : i + _LINES_PER_PAGE] for i in range(0, len(lines), _LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []
    # 1: catalog, 2: page tree, 3: font; then a page and its content per page.
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = b" ".join(f"{p} 0 R".encode() for p in page_ids)
    objects.append(
        b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(pages)).encode() + b" >>"
    )
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    for page_id, page in zip(page_ids, pages, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents "
            + f"{page_id + 1} 0 R".encode()
            + b" >>"
        )
        stream = (
            b"BT /F1 9 Tf 12 TL 40 800 Td\n"
            + b"".join(b"(" + _pdf_text(line) + b") Tj T*\n" for line in page)
            + b"ET"
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def check_size(document: bytes, *, limit_bytes: int, provider: str, name: str) -> None:
    """Refuse a document over the provider's limit before anything is sent."""
    if len(document) > limit_bytes:
        raise DisputeResponseRefusedError(
            f"{name} is {len(document) / MB:.1f} MB, over {provider}'s limit of "
            f"{limit_bytes / MB:g} MB per document; shorten the note or the evidence",
            DOCUMENT_TOO_LARGE,
        )
