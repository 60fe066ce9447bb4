"""The ERP datasets (issue 15): the landed ERP tables and the reconciliation loader that reads them."""
