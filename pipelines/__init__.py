"""Omnichannel retail sync: NewStore/Cloudshelf POS and Centra/commercetools, orchestrated by Dagster."""
