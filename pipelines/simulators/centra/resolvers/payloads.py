"""Read permissions of mutation payloads: reading the object a mutation returns needs that object's read
permission, as the `extensions.permissionsUsed` of Centra's documented responses show (AD-erp: confirmOrder
-> `Order:read`; createShipment/updateShipment/completeShipment -> `Shipment:read`, `Order:read`;
changeStock -> `WarehouseDelivery:read`, the pre-rename name of StockChange)."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType

from .common import require


def _reads(*permissions: str) -> Any:
    def resolve(obj: Any, info: Any, **_: Any) -> Any:
        value = obj.get(_snake(info.field_name))
        if value is not None and value != []:
            for perm in permissions:
                require(info, perm)
        return value
    return resolve


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _bind(type_name: str, field_name: str, *permissions: str) -> ObjectType:
    t = ObjectType(type_name)
    t.set_field(field_name, _reads(*permissions))
    return t


_ORDER = ("Order:read",)
_SHIPMENT = ("Shipment:read", "Order:read")
BINDABLES = [
    _bind("OrderConfirmPayload", "order", *_ORDER),
    _bind("DirectToConsumerOrderUpdatePayload", "order", *_ORDER),
    _bind("DirectToConsumerOrderCancelPayload", "order", *_ORDER),
    _bind("OrdersLockPayload", "orders", *_ORDER),
    _bind("OrderCapturePayload", "order", *_ORDER),
    _bind("ShipmentCreatePayload", "shipment", *_SHIPMENT),
    _bind("ShipmentUpdatePayload", "shipment", *_SHIPMENT),
    _bind("ShipmentCompletePayload", "shipment", *_SHIPMENT),
    _bind("ShipmentCapturePayload", "shipment", *_SHIPMENT),
    _bind("StockChangePayload", "stockChange", "WarehouseDelivery:read"),
    _bind("StockSetPayload", "stockChanges", "WarehouseDelivery:read"),
]
