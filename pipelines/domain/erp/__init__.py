"""Order-to-cash with an ERP behind the commerce platform: the ERP as the flows see it (`model`), the interface an
ERP adapter implements (`ports`), and the estate's mapping between the commerce catalogue and the ERP (`mapping`).

Business Central (`pipelines/connectors/businesscentral/erp.py`) is the adapter today; a retailer on another ERP
swaps the adapter behind the same port. Nothing here branches on the ERP's name.
"""
