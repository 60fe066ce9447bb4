"""The ERP behind the commerce platform (issue 15), the parts that are not order flows: the daily store sales journal
(`journal`: post a business day's store sales, read back what the ERP posted). The ERP stock resync to the commerce
platform's DC warehouse is part of the stock sync (`pipelines.sync.erp_stock`). Written against the ERP port
(`pipelines.domain.erp.ports.ErpSystem`), pure logic in `pipelines.domain.erp`."""
