"""GCN notices as VOEvent XML (classic GCN over Kafka or a saved packet), read with lxml.

What follow-up needs from a notice: its IVORN and role, the packet type, the mission's trigger
number, the trigger time and the position with its error radius (WhereWhen, STC Position2D).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from .rows import RowRefused, digest

#: A hostile packet must not make lxml fetch entities, DTDs or the network, nor eat the memory.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
MAX_PACKET = 1_000_000


@dataclass(frozen=True)
class Notice:
    """The fields of one VOEvent notice that make or refine an alert."""

    ivorn: str
    role: str
    packet_type: str
    mission: str
    trigger: str
    time: datetime | None
    ra: float
    dec: float
    error_deg: float
    fields: dict = field(repr=False)

    @property
    def trigger_name(self) -> str:
        """The alias every packet of one trigger shares, e.g. 'GCN SWIFT 532871'."""
        return f"GCN {self.mission} {self.trigger}"

    @property
    def digest(self) -> str:
        return digest(self.fields)


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _find(root, *names):
    """The first descendant along this path of local names, whatever the namespaces."""
    node = root
    for name in names:
        node = next((child for child in node.iter() if _local(child.tag) == name and child is not node), None)
        if node is None:
            return None
    return node


def _params(root) -> dict[str, str]:
    return {
        p.get("name"): (p.get("value") or "").strip()
        for p in root.iter()
        if _local(p.tag) == "Param" and p.get("name")
    }


def _float(node, what: str, low: float, high: float) -> float:
    if node is None or not (node.text or "").strip():
        raise RowRefused(f"no {what} in WhereWhen")
    try:
        value = float(node.text)
    except ValueError:
        raise RowRefused(f"{what} is not a number: {node.text.strip()[:30]!r}") from None
    if not low <= value <= high:
        raise RowRefused(f"{what} {value} is out of range")
    return value


def read_notice(data: bytes) -> Notice:
    """The notice in a VOEvent packet; RowRefused with the reason when it cannot make an alert."""
    if len(data) > MAX_PACKET:
        raise RowRefused(f"packet of {len(data)} bytes is larger than any VOEvent notice")
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as error:
        raise RowRefused(f"not XML: {error}") from None
    if _local(root.tag) != "VOEvent":
        raise RowRefused(f"not a VOEvent but <{_local(root.tag)[:30]}>")
    ivorn = (root.get("ivorn") or "").strip()
    if not ivorn.startswith("ivo://") or len(ivorn) > 255 or any(not c.isprintable() for c in ivorn):
        raise RowRefused(f"bad or missing ivorn attribute {ivorn[:60]!r}")
    params = _params(root)
    position = _find(root, "WhereWhen", "Position2D")
    if position is None:
        raise RowRefused("no position (WhereWhen/Position2D)")
    unit = (position.get("unit") or "deg").strip()
    if unit != "deg":
        raise RowRefused(f"position unit {unit[:10]!r}, not deg")
    ra = _float(_find(position, "C1"), "RA (C1)", 0, 360) % 360.0
    dec = _float(_find(position, "C2"), "Dec (C2)", -90, 90)
    error_deg = _float(_find(position, "Error2Radius"), "error radius (Error2Radius)", 0, 180)
    iso = _find(root, "WhereWhen", "ISOTime")
    when = None
    if iso is not None and (iso.text or "").strip():
        try:
            when = datetime.fromisoformat(iso.text.strip()).replace(tzinfo=UTC)
        except ValueError:
            raise RowRefused(f"ISOTime is not a time: {iso.text.strip()[:30]!r}") from None
    # ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_532871-729: the mission is the path before '#'.
    mission = ivorn.removeprefix("ivo://").split("#", 1)[0].rsplit("/", 1)[-1][:30] or "GCN"
    trigger = params.get("TrigID", "")[:30]
    fields = {
        "ivorn": ivorn,
        "role": root.get("role") or "",
        "packet_type": params.get("Packet_Type", ""),
        "trigger": trigger,
        "time": when.isoformat() if when else None,
        "ra": ra,
        "dec": dec,
        "error_deg": error_deg,
    }
    return Notice(
        ivorn=ivorn,
        role=fields["role"],
        packet_type=fields["packet_type"],
        mission=mission,
        trigger=trigger or ivorn.rsplit("#", 1)[-1][:30],
        time=when,
        ra=ra,
        dec=dec,
        error_deg=error_deg,
        fields=fields,
    )
