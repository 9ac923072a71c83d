-- Webhooks (issue 14 §8): subscriptions, the durable outbox of messages to deliver and
-- the log of every delivery attempt. Conventions as in 0001_init.sql: ids as text, times
-- as unix milliseconds. A subscription's secret signs its messages (HMAC), so it is
-- kept as given, never hashed; the API never shows it after creating or rotating it.

-- events: '' for every type, else ',type,type,' (the fan-out matches it with LIKE);
-- min_severity: the rank of EventSeverity (0 unknown .. 5 critical), for finding.new.
CREATE TABLE webhook_subscriptions (
    id                     TEXT    NOT NULL PRIMARY KEY,
    org_id                 TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                   TEXT    NOT NULL,
    url                    TEXT    NOT NULL,
    events                 TEXT    NOT NULL,
    min_severity           INTEGER,
    enabled                INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret                 TEXT    NOT NULL,
    previous_secret        TEXT,
    previous_secret_until  INTEGER,
    created_by             TEXT    NOT NULL,
    created_at             INTEGER NOT NULL,
    UNIQUE (org_id, name)
) STRICT;

-- One message to one subscription. message_id is the webhook-id header (the same for
-- every subscription an event fans out to, and on every attempt); id is
-- message_id || ':' || subscription_id. A node takes due messages by setting
-- lease_owner/lease_until with a conditional UPDATE, so two nodes never send one.
CREATE TABLE webhook_outbox (
    id               TEXT    NOT NULL PRIMARY KEY,
    message_id       TEXT    NOT NULL,
    org_id           TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    subscription_id  TEXT    NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_type       TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    lease_owner      TEXT,
    lease_until      INTEGER
) STRICT;
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE INDEX webhook_outbox_subscription ON webhook_outbox (subscription_id, created_at);

CREATE TABLE webhook_attempts (
    outbox_id    TEXT    NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, attempt)
) STRICT;

-- host.offline is sent once per offline spell: the last_seen it was sent for. Hosts
-- already offline when this ships are not announced.
ALTER TABLE hosts ADD COLUMN offline_event_seen INTEGER;
UPDATE hosts SET offline_event_seen = last_seen;
