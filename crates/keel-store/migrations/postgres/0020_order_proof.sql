-- A session that looked an order up by number and email sees its status
-- but not where it ships; `verified` is held once the shopper also gave the
-- shipping address's postal code.
ALTER TABLE storefront_session_orders DROP CONSTRAINT storefront_session_orders_access_check;
ALTER TABLE storefront_session_orders ADD CONSTRAINT storefront_session_orders_access_check
    CHECK (access IN ('placed', 'lookup', 'verified'));
