"""A measure's vehicles in DATEX II words: `VehicleCharacteristics` content, and who is exempted.

Why one module: the situations (v3 `forVehiclesWithCharacteristicsOf`, v2.3 the same without
namespaces) and the regulations feed (`VehicleCondition`s, negated ones for exemptions) say the
same vehicles; the translation tables are the model's (`DATEX2_KIND`, `DATEX2_EXEMPTION`, as DiaLog
writes them). Limits are written `greaterThan` the limit: "no entry for vehicles heavier than
3.5 t" (DiaLog writes `lessThanOrEqualTo` for the same order; our reader takes either).

A restriction bans vehicles of one of its kinds (any kind when none) that exceed one of its limits
and carry one of its Crit'Air classes. Kinds are vehicle types, loads or usages in DATEX II, and
one `VehicleCharacteristics` holds one load and one usage at most: so each load, each usage and
the vehicle types together make one characteristics each, with the same limits and classes (the
`VehicleCondition`s of an `or`).
"""

from __future__ import annotations

from traffic_hub.model import Vehicles
from traffic_hub.model.measure import DATEX2_EXEMPTION, DATEX2_KIND

__all__ = ["ACCESS_EXEMPTIONS", "characteristics", "exemptions"]

# exemptions DATEX II 3.7 says with an AccessCondition (negated) rather than with vehicle characteristics
ACCESS_EXEMPTIONS = {"residents": "destinationTraffic", "local_access": "accessOnly"}
_LIMITS = (  # (model field, wrapper element, value element, needs typeOfWeight), in XSD order
    ("max_weight_t", "grossWeightCharacteristic", "grossVehicleWeight", True),
    ("max_height_m", "heightCharacteristic", "vehicleHeight", False),
    ("max_length_m", "lengthCharacteristic", "vehicleLength", False),
    ("max_width_m", "widthCharacteristic", "vehicleWidth", False),
    ("max_axle_load_t", "heaviestAxleWeightCharacteristic", "heaviestAxleWeight", False),
)


_V2_TYPES = {"heavyGoodsVehicle": "lorry", "lightCommercialVehicle": "van"}  # 2.3 has not the 3.x words


def _leaf(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


def characteristics(vehicles: Vehicles, prefix: str = "com:", *, v2: bool = False) -> list[str]:
    """The content of one or more `VehicleCharacteristics` saying whom `vehicles` bans (element prefix `prefix`).

    `v2=True` for DATEX II 2.3: its vehicle types (`lorry`, `van`), no `typeOfWeight`, no emission
    classes (Crit'Air is then left out)."""
    loads: list[str] = []
    usages: list[str] = []
    types: list[str] = []
    for kind in vehicles.kinds:
        element, value = DATEX2_KIND.get(kind, ("", ""))
        value = _V2_TYPES.get(value, value) if v2 else value
        {"loadType": loads, "vehicleUsage": usages, "vehicleType": types}.get(element, []).append(value)
    limits = "".join(_limit(vehicles, prefix, *spec[:3], spec[3] and not v2) for spec in _LIMITS)
    critair = ""
    if not v2 and vehicles.critair:
        classes = "".join(_leaf(f"{prefix}emissionClassificationOther", c.value) for c in vehicles.critair)
        critair = _leaf(f"{prefix}emissions", classes)
    groups = [_leaf(f"{prefix}loadType", load) for load in dict.fromkeys(loads)]
    if types:
        groups.append("".join(_leaf(f"{prefix}vehicleType", value) for value in dict.fromkeys(types)))
    groups.extend(_leaf(f"{prefix}vehicleUsage", usage) for usage in dict.fromkeys(usages))
    out = [group + limits + critair for group in groups or [""]]
    return [content for content in out if content]


def _limit(vehicles: Vehicles, prefix: str, field: str, wrapper: str, element: str, weight: bool) -> str:
    value = getattr(vehicles, field)
    if value is None:
        return ""
    typed = _leaf(f"{prefix}typeOfWeight", "maximumPermitted") if weight else ""
    inner = f"{_leaf(f'{prefix}comparisonOperator', 'greaterThan')}{_leaf(f'{prefix}{element}', f'{value:g}')}{typed}"
    return _leaf(f"{prefix}{wrapper}", inner)


def exemptions(vehicles: Vehicles, prefix: str = "com:") -> tuple[list[str], list[str]]:
    """(vehicle characteristics contents, access condition types) of the exempted users."""
    characteristics_: list[str] = []
    access: list[str] = []
    for exemption in vehicles.except_:
        if exemption.value in ACCESS_EXEMPTIONS:
            access.append(ACCESS_EXEMPTIONS[exemption.value])
            continue
        element, value = DATEX2_EXEMPTION[exemption]
        if element in ("vehicleUsage", "vehicleType"):
            characteristics_.append(_leaf(f"{prefix}{element}", value))
    return characteristics_, list(dict.fromkeys(access))
