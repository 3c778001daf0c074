"""Demo data for the sandbox: a small shop in PostgreSQL (foreign keys, sequences, a
partitioned table, indexes, incompressible payloads) in `appdb`, a second database `shop` its
application role owns, a Redis cache of every type, and a Redis job queue (a stream read by a
consumer group) for the sandbox's worker."""

from __future__ import annotations

import json
import os

from drtool.adapters import postgres, redis_client

DATABASE = "appdb"
SHOP_DATABASE = "shop"

# Row counts: 232,000 rows in all. Payloads are random bytes so the data does not compress
# and backup timings are honest.
SCHEMA = """
CREATE FUNCTION rand_bytes(n int) RETURNS bytea LANGUAGE sql VOLATILE AS
  $$ SELECT decode(string_agg(md5(random()::text), ''), 'hex')
     FROM generate_series(1, greatest(1, n / 16)) $$;
CREATE TABLE customers (
  id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL,
  payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE products (
  id serial PRIMARY KEY, sku text NOT NULL UNIQUE, price_cents int NOT NULL,
  payload bytea NOT NULL);
CREATE TABLE orders (
  id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  placed_at timestamptz NOT NULL, status text NOT NULL, payload bytea NOT NULL);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE TABLE order_items (
  order_id bigint NOT NULL REFERENCES orders(id), line int NOT NULL,
  product_id int NOT NULL REFERENCES products(id), quantity int NOT NULL,
  PRIMARY KEY (order_id, line));
CREATE INDEX order_items_product_idx ON order_items (product_id);
CREATE TABLE events (
  id bigserial, occurred_at timestamptz NOT NULL, kind text NOT NULL, payload bytea NOT NULL,
  PRIMARY KEY (id, occurred_at)) PARTITION BY RANGE (occurred_at);
CREATE TABLE events_2026_h1 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE events_2026_h2 PARTITION OF events FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
CREATE TABLE events_other PARTITION OF events DEFAULT;
CREATE INDEX events_kind_idx ON events (kind);
CREATE TABLE app_heartbeat (
  id bigserial PRIMARY KEY, beat_at timestamptz NOT NULL DEFAULT clock_timestamp());
"""

DATA = """
INSERT INTO customers (email, name, payload)
  SELECT 'customer' || i || '@example.com', 'Customer ' || i, rand_bytes(96)
  FROM generate_series(1, 20000) i;
INSERT INTO products (sku, price_cents, payload)
  SELECT 'SKU-' || i, 100 + (random() * 10000)::int, rand_bytes(64)
  FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, placed_at, status, payload)
  SELECT 1 + (i % 20000), '2026-01-01'::timestamptz + (i || ' minutes')::interval,
         (ARRAY['placed', 'paid', 'shipped'])[1 + i % 3], rand_bytes(32)
  FROM generate_series(1, 60000) i;
INSERT INTO order_items (order_id, line, product_id, quantity)
  SELECT 1 + (i / 2), i % 2, 1 + (i % 2000), 1 + i % 5 FROM generate_series(0, 119999) i;
INSERT INTO events (occurred_at, kind, payload)
  SELECT '2026-01-01'::timestamptz + (i * 17 || ' minutes')::interval,
         (ARRAY['login', 'view', 'checkout', 'refund'])[1 + i % 4], rand_bytes(256)
  FROM generate_series(1, 30000) i;
ANALYZE;
"""

# An application role that owns a database, as real applications' databases are owned: a dump
# of `shop` (its schema and every object in it are the role's) then needs the role on the
# cluster it is restored into, and so does a dump of appdb (the role may read its products).
# It exists on the primary only (roles belong to the cluster, not the database); a drill
# creates it on the target.
APP_ROLE = "shop_owner"
APP_ROLE_DDL = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_owner') THEN
    CREATE ROLE shop_owner NOLOGIN;
  END IF;
END $$;
"""
# In appdb: the role reads the catalogue.
APP_GRANTS = "GRANT SELECT ON products TO shop_owner;"
# In `shop` (owned by the role): a schema with a table, a view, a function and a trigger, all
# the role's; 500 price changes.
SHOP_SCHEMA = """
CREATE SCHEMA shop AUTHORIZATION shop_owner;
SET ROLE shop_owner;
CREATE TABLE shop.price_changes (
  id bigserial PRIMARY KEY, sku text NOT NULL, price_cents int NOT NULL,
  changed_at timestamptz NOT NULL);
CREATE FUNCTION shop.stamp_change() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.changed_at := coalesce(NEW.changed_at, clock_timestamp()); RETURN NEW; END $$;
CREATE TRIGGER price_changes_stamp BEFORE INSERT ON shop.price_changes
  FOR EACH ROW EXECUTE FUNCTION shop.stamp_change();
CREATE VIEW shop.current_prices AS
  SELECT DISTINCT ON (sku) sku, price_cents, changed_at FROM shop.price_changes
  ORDER BY sku, changed_at DESC, id DESC;
INSERT INTO shop.price_changes (sku, price_cents)
  SELECT 'SKU-' || i, 100 + (random() * 10000)::int FROM generate_series(1, 500) i;
RESET ROLE;
"""

REDIS_LAYOUT = {"strings": 12000, "hashes": 4000, "lists": 2500, "sets": 2000}
REDIS_TTL_KEYS = 1500  # strings with a week-long TTL: long enough to outlive any drill

# The job queue (drtool.sandbox.worker reads it). Jobs wait in a stream read by a consumer
# group; the worker counts what it did in keys the seed creates, so that its work changes no
# key count. Nothing expires.
QUEUE_STREAM = "queue:jobs"
QUEUE_GROUP = "workers"
QUEUE_PROCESSED = "worker:processed"  # jobs done, in all
QUEUE_STATS = "worker:stats"  # jobs done, per kind
QUEUE_LAST_JOB = "worker:last_job"  # the id of the newest job done
QUEUE_HEARTBEAT = "worker:heartbeat"  # written by the worker about once a second
QUEUE_JOBS = 2000
QUEUE_KINDS = ("email", "invoice", "shipment", "refund")
QUEUE_DEAD = 20  # jobs given up on, in the list queue:dead
QUEUE_SCHEDULED = 500  # jobs due later, in the sorted set queue:scheduled


def seed_postgres(host: str, port: int, password: str) -> bool:
    """Create and fill `appdb` and `shop` (and their application role), each unless it
    exists; True when it seeded either."""
    with postgres.connect(host, port, "postgres", password, "postgres") as admin:
        admin.execute(APP_ROLE_DDL)
        found = {row[0] for row in admin.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)",
            ([DATABASE, SHOP_DATABASE],)).fetchall()}
        if DATABASE not in found:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        if SHOP_DATABASE not in found:
            admin.execute(f"CREATE DATABASE {SHOP_DATABASE} OWNER {APP_ROLE}")
    if DATABASE not in found:
        with postgres.connect(host, port, "postgres", password, DATABASE) as conn:
            conn.execute(SCHEMA)
            conn.execute(DATA)
            conn.execute(APP_GRANTS)
    if SHOP_DATABASE not in found:
        with postgres.connect(host, port, "postgres", password, SHOP_DATABASE) as conn:
            conn.execute(SHOP_SCHEMA)
    return not {DATABASE, SHOP_DATABASE} <= found


def seed_redis(host: str, port: int, password: str) -> bool:
    """Fill Redis db0 with strings, hashes, lists and sets unless it holds keys already."""
    client = redis_client.connect(host, port, password, decode=False)
    if client.dbsize() > 0:
        return False
    pipe = client.pipeline(transaction=False)
    for i in range(REDIS_LAYOUT["strings"]):
        if i < REDIS_TTL_KEYS:
            pipe.set(f"session:{i}", os.urandom(48), ex=7 * 24 * 3600)
        else:
            pipe.set(f"cache:page:{i}", os.urandom(64))
    for i in range(REDIS_LAYOUT["hashes"]):
        pipe.hset(f"customer:{i}", mapping={"name": f"Customer {i}", "token": os.urandom(24),
                                            "visits": i % 97})
    for i in range(REDIS_LAYOUT["lists"]):
        pipe.rpush(f"recent:{i}", *[os.urandom(16) for _ in range(5)])
    for i in range(REDIS_LAYOUT["sets"]):
        pipe.sadd(f"tags:{i}", *[os.urandom(8) for _ in range(4)])
    pipe.execute()
    return True


def seed_queue(host: str, port: int, password: str) -> bool:
    """Fill the queue's db0 unless it holds keys already: 2,000 jobs waiting in the stream
    for the consumer group, the worker's counters at zero, dead and scheduled jobs. One
    transaction: an interrupted seed leaves nothing."""
    client = redis_client.connect(host, port, password)
    if client.dbsize() > 0:
        return False
    pipe = client.pipeline(transaction=True)
    for i in range(QUEUE_JOBS):
        pipe.xadd(QUEUE_STREAM, {"kind": QUEUE_KINDS[i % len(QUEUE_KINDS)],
                                 "order_id": 1 + (i * 29) % 60000, "attempt": 1})
    pipe.xgroup_create(QUEUE_STREAM, QUEUE_GROUP, id="0")  # every job is still to be done
    pipe.set(QUEUE_PROCESSED, 0)
    pipe.hset(QUEUE_STATS, mapping=dict.fromkeys(QUEUE_KINDS, 0))
    pipe.set(QUEUE_LAST_JOB, "")
    pipe.rpush("queue:dead", *[json.dumps({"kind": "email", "order_id": i, "attempt": 5})
                               for i in range(1, QUEUE_DEAD + 1)])
    pipe.zadd("queue:scheduled", {f"reminder:{i}": 1_900_000_000 + 60 * i
                                  for i in range(QUEUE_SCHEDULED)})
    pipe.execute()
    return True
