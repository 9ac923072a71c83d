-- The platform's own feed sync (issue 12): the sync state of every configured feed and
-- the lease that lets one platform node sync at a time. Conventions as in
-- 0001_init.sql: times as unix milliseconds.

-- One row per configured feed (by its configured name). kind and url: as configured at
-- the last attempt (a changed URL or kind starts the feed over). last_success_at: the
-- last attempt that ended with the feed's data current (imported, or not modified).
-- failures: consecutive failed attempts since then. last_error: the last failure, URLs
-- without credentials. records: records handed to the import by the feed's last
-- download. cursor_json: the kind's own sync state (validators, archive name), JSON.
CREATE TABLE vuln_feed_sync (
    name             TEXT    COLLATE "C" NOT NULL PRIMARY KEY,
    kind             TEXT    NOT NULL,
    url              TEXT    NOT NULL,
    last_attempt_at  BIGINT,
    last_success_at  BIGINT,
    failures         BIGINT  NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_error       TEXT,
    next_attempt_at  BIGINT,
    records          BIGINT,
    cursor_json      TEXT
);

-- A single row: the node holding the sync lease (NULL: none) and until when. Taken by a
-- conditional UPDATE when free, expired or already held by the taker; renewed while
-- the holder syncs.
CREATE TABLE vuln_sync_lease (
    id          BIGINT  NOT NULL PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    expires_at  BIGINT  NOT NULL
);
INSERT INTO vuln_sync_lease (id, holder, expires_at) VALUES (1, NULL, 0);

-- `patchctl vulndb sync` kept its validators as empty sources named feed:NAME; they now
-- live in vuln_feed_sync.cursor_json (the first sync downloads each feed once more).
DELETE FROM vuln_sources WHERE name LIKE 'feed:%' AND record_count = 0;
