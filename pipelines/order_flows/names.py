"""The order flows' names (the `flow` column of `order_flow_work`)."""

STORE_RETURN = "store_return"  # an in-store return of an online order -> the commerce return and refund
PICKUP_ORDER = "pickup_order"  # a click-and-collect order -> the store's order (or its cancellation)
PICKUP_HANDOVER = "pickup_handover"  # the store's handover -> the online order shipped, no notification
ENDLESS_AISLE = "endless_aisle"  # a store's endless-aisle order for home delivery -> a commerce order
SHIP_FROM_STORE = "ship_from_store"  # an online delivery order fulfilled by a store (final stock check, re-routing)
KIOSK_ORDER = "kiosk_order"  # a Cloudshelf kiosk order: take-home sale -> stock sync; delivery -> a commerce order
ERP_ORDER = "erp_order"  # a verified commerce order -> an ERP sales order
ERP_SHIPMENT = "erp_shipment"  # an ERP shipment -> a commerce shipment with tracking
ALL = (STORE_RETURN, PICKUP_ORDER, PICKUP_HANDOVER, ENDLESS_AISLE, SHIP_FROM_STORE, KIOSK_ORDER, ERP_ORDER,
       ERP_SHIPMENT)
