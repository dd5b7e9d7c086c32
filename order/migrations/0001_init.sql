-- +goose Up
-- 0001: activities, their items, and orders.
-- Names are unqualified: the migration runs in whatever schema search_path
-- points at (tests give every test a schema of its own).

CREATE TABLE activities (
    id                  bigserial PRIMARY KEY,
    name                text        NOT NULL,
    start_at            timestamptz NOT NULL,
    end_at              timestamptz NOT NULL,
    pay_timeout_seconds int         NOT NULL CHECK (pay_timeout_seconds > 0),
    per_user_limit      int         NOT NULL CHECK (per_user_limit > 0),
    status              text        NOT NULL DEFAULT 'DRAFT'
                                    CHECK (status IN ('DRAFT', 'PUBLISHED')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    published_at        timestamptz,
    CHECK (start_at < end_at),
    CHECK ((status = 'PUBLISHED') = (published_at IS NOT NULL))
);

-- PublishedItems scans published activities that have not ended.
CREATE INDEX activities_published_end_at_idx ON activities (end_at) WHERE status = 'PUBLISHED';

CREATE TABLE items (
    id          bigserial PRIMARY KEY,
    activity_id bigint NOT NULL REFERENCES activities (id),
    name        text   NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    stock       bigint NOT NULL CHECK (stock > 0)
);

CREATE INDEX items_activity_id_idx ON items (activity_id);

-- No foreign keys on orders: rows arrive in batches on the persister's hot
-- path and their activity and item were checked by the gateway's Lua script.
CREATE TABLE orders (
    id             bigint      PRIMARY KEY, -- the Snowflake returned in the 202
    activity_id    bigint      NOT NULL,
    item_id        bigint      NOT NULL,
    user_id        bigint      NOT NULL,
    quantity       int         NOT NULL CHECK (quantity > 0),
    amount_cents   bigint      NOT NULL CHECK (amount_cents >= 0),
    status         text        NOT NULL CHECK (status IN ('PENDING', 'PAID', 'CANCELLED')),
    cancel_reason  text        CHECK (cancel_reason IN ('TIMEOUT', 'USER')),
    created_at     timestamptz NOT NULL,
    expire_at      timestamptz NOT NULL,
    paid_at        timestamptz,
    cancelled_at   timestamptz,
    stock_returned boolean     NOT NULL DEFAULT false,
    trade_no       text        UNIQUE,
    CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL)),
    CHECK ((status = 'PAID') = (paid_at IS NOT NULL)),
    CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL)),
    CHECK (NOT stock_returned OR status = 'CANCELLED')
);

-- Timeout sweeper: PENDING orders past expire_at, oldest first.
CREATE INDEX orders_status_expire_at_idx ON orders (status, expire_at);
-- Stats and reconciliation per item and state.
CREATE INDEX orders_item_id_status_idx ON orders (item_id, status);
-- Stock-return sweeper: cancelled orders whose units are not back in Redis yet.
CREATE INDEX orders_returning_idx ON orders (cancelled_at)
    WHERE status = 'CANCELLED' AND NOT stock_returned;
