"""Cloudshelf kiosks, pure logic (no Dagster, no I/O): what each kiosk location may sell (`availability`), the
catalogue as Cloudshelf's inputs (`catalog`), and the daily SKU audit between the commerce platform and the kiosk
(`audit`). The I/O is `pipelines.kiosk`; the Dagster assets are `pipelines.defs.kiosk`."""
