"""The GraphQL documents the Centra client sends (Integration API, `POST <base_url>/graphql`)."""

from __future__ import annotations

Q_RATE_LIMITS = "query RateLimits { rateLimits { type intervalSeconds quota usedQuota remainingQuota } }"
Q_WAREHOUSES = "query Warehouses { warehouses { id name country { code } } }"
Q_MARKETS = ("query Markets { markets { id name store { id } allocationRule { id } "
             "assignedToCountries { code } } }")
Q_PRICELISTS = ("query Pricelists { pricelists { id name currency { code } store { id } "
                "assignedToCountries { code } } }")
Q_PRODUCT_SIZES = """
query ProductSizes($first: Int!, $after: String) {
  productSizeConnection(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id SKU EAN sizeNumber isActive size { name }
      productVariant { id variantNumber name product { id productNumber name status } }
    } }
  }
}"""
Q_VARIANT_PRICES = """
query VariantPrices($limit: Int!, $page: Int!) {
  productVariants(limit: $limit, page: $page) {
    id prices { pricelist { id } price { value currency { code } } }
  }
}"""
Q_STOCK = """
query Stock($where: StockFilter, $limit: Int!, $page: Int!) {
  warehouses {
    id
    stock(where: $where, limit: $limit, page: $page) {
      productSize { id SKU }
      physicalQuantity allocatedQuantity freeToAllocateQuantity demandQuantity
    }
  }
}"""
_ORDER_FIELDS = """
fragment OrderFields on Order {
  id number status createdAt currencyBaseRate externalId
  store { id } market { id } pricelist { id } country { code }
  shippingAddress { email country { code } }
  ... on DirectToConsumerOrder { customer { email } }
  grandTotal(includingTax: true) { value currency { code } }
  totals { taxIncluded { value } taxAdded { value } discounts { value } shipping { value } }
  lines(includeFullyCancelled: true) {
    id productNumber quantity cancelledQuantity returnedQuantity discountPercent taxPercent
    unitPrice(includingTax: true) { value }
    unitOriginalPrice(includingTax: true) { value }
    lineValue(includingTax: true) { value }
    productSize { SKU EAN }
  }
}"""
Q_ORDERS = """
query Orders($where: OrderFilter, $limit: Int!, $page: Int!) {
  orders(where: $where, sort: [number_ASC], limit: $limit, page: $page) { ...OrderFields }
}""" + _ORDER_FIELDS
Q_RETURNS = """
query Returns($where: ReturnFilter, $limit: Int!, $page: Int!) {
  returns(where: $where, limit: $limit, page: $page) {
    id returnStatus createdAt externalId
    returnWarehouse { id }
    order { id number }
    grandTotal(includingTax: true) { value currency { code } }
    totals { taxIncluded { value } taxAdded { value } }
    refundPaymentHistory { createdAt entryType status value { value } }
    lines {
      id quantity
      unitPrice(includingTax: true) { value }
      lineValue(includingTax: true) { value }
      orderLine { id taxPercent productSize { SKU } }
    }
  }
}"""
Q_STOCK_CHANGES = """
query StockChanges($first: Int!, $after: String, $where: StockChangeFilter) {
  stockChangeConnection(first: $first, after: $after, where: $where) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id createdAt description
      lines { id deliveredQuantity freeToAllocateQuantity warehouse { id } productSize { id SKU } }
    } }
  }
}"""
_PAYLOAD = "userErrors { message path } userWarnings { message path }"
M_SET_STOCK = ("mutation SetStock($input: StockSetInput!) { setStock(input: $input) { "
               f"stockChanges {{ id }} {_PAYLOAD} }} }}")
M_CHANGE_STOCK = ("mutation ChangeStock($input: StockChangeInput!) { changeStock(input: $input) { "
                  f"stockChange {{ id }} {_PAYLOAD} }} }}")
