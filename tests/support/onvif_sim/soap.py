"""SOAP 1.2 plumbing for the simulator: safe request parsing, response envelopes and faults."""

from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
import re
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

# Every prefix a response may use, declared once on the envelope as gSOAP-based cameras do.
NAMESPACES: dict[str, str] = {
    "env": SOAP_ENV,
    "wsa": WSA,
    "xs": "http://www.w3.org/2001/XMLSchema",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "ter": "http://www.onvif.org/ver10/error",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
    "tns1": "http://www.onvif.org/ver10/topics",
}

# A SOAP request to a camera is a few kilobytes; anything far larger is hostile.
MAX_BODY_BYTES = 64 * 1024
_FORBIDDEN_MARKUP = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class SoapParseError(ValueError):
    """The request body is not an acceptable SOAP 1.2 envelope."""


@dataclass(frozen=True)
class SoapRequest:
    """One parsed SOAP request: the operation's element plus the headers the simulator uses."""

    operation: str
    namespace: str
    body: ET.Element
    header: ET.Element | None
    action: str | None
    message_id: str | None


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def parse_request(data: bytes) -> SoapRequest:
    """Parse a SOAP 1.2 request, refusing DTDs/entities so no entity expansion can happen."""
    if len(data) > MAX_BODY_BYTES:
        raise SoapParseError("request too large")
    if _FORBIDDEN_MARKUP.search(data):
        raise SoapParseError("DTDs and entities are not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise SoapParseError("request is not well-formed XML") from err
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapParseError("root element is not a SOAP 1.2 Envelope")
    body = root.find(f"{{{SOAP_ENV}}}Body")
    if body is None or len(body) == 0:
        raise SoapParseError("SOAP Body is missing or empty")
    operation_element = body[0]
    namespace, operation = _split_tag(operation_element.tag)
    header = root.find(f"{{{SOAP_ENV}}}Header")
    action = message_id = None
    if header is not None:
        action = header.findtext(f"{{{WSA}}}Action")
        message_id = header.findtext(f"{{{WSA}}}MessageID")
    return SoapRequest(
        operation=operation,
        namespace=namespace,
        body=operation_element,
        header=header,
        action=action.strip() if action else None,
        message_id=message_id.strip() if message_id else None,
    )


def child_text(element: ET.Element, local_name: str) -> str | None:
    """Return the text of the first descendant with this local name, in any namespace."""
    for node in element.iter():
        if _split_tag(node.tag)[1] == local_name:
            return (node.text or "").strip()
    return None


def text(value: object) -> str:
    """Escape a value for XML character data."""
    return escape(str(value))


def attr(value: object) -> str:
    """Quote and escape a value for an XML attribute (includes the quotes)."""
    return quoteattr(str(value))


def xml_datetime(value: dt.datetime) -> str:
    """Format an aware datetime as xs:dateTime in UTC with a Z suffix, as cameras do."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(body: str, request: SoapRequest | None = None) -> str:
    """Wrap body XML in a SOAP 1.2 envelope, echoing WS-Addressing when the request used it."""
    declarations = " ".join(f"xmlns:{prefix}={attr(uri)}" for prefix, uri in NAMESPACES.items())
    header = ""
    if request is not None and request.action:
        action = request.action
        reply_action = (
            action[: -len("Request")] + "Response" if action.endswith("Request") else action
        )
        header = f"<wsa:Action>{text(reply_action)}</wsa:Action>"
        if request.message_id:
            header += f"<wsa:RelatesTo>{text(request.message_id)}</wsa:RelatesTo>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<env:Envelope {declarations}>"
        f"<env:Header>{header}</env:Header>"
        f"<env:Body>{body}</env:Body>"
        "</env:Envelope>"
    )


def fault(code: str, subcodes: tuple[str, ...], reason: str) -> str:
    """Build a SOAP 1.2 Fault (code like 'env:Sender', subcodes like 'ter:NotAuthorized')."""
    subcode_xml = ""
    for subcode in reversed(subcodes):
        subcode_xml = (
            f"<env:Subcode><env:Value>{text(subcode)}</env:Value>{subcode_xml}</env:Subcode>"
        )
    return envelope(
        "<env:Fault>"
        f"<env:Code><env:Value>{text(code)}</env:Value>{subcode_xml}</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{text(reason)}</env:Text></env:Reason>'
        "</env:Fault>"
    )
