-- The vulnerability database (issue 4): imported feed records, the (ecosystem, package)
-- pairs each touches, per-source bookkeeping and a generation counter.
-- Conventions as in 0001_init.sql; feed ids, ecosystems and package names are TEXT as
-- the feed writes them.

-- One row per feed ("source"). record_count: rows of vuln_records with this source.
-- imported_at: the last import that changed something (or the first import).
-- checked_at: the last import or sync attempt. url, etag, last_modified: where the feed
-- was last downloaded from and the validators of that response (conditional requests).
CREATE TABLE vuln_sources (
    name           TEXT    NOT NULL PRIMARY KEY,
    record_count   INTEGER NOT NULL DEFAULT 0,
    imported_at    INTEGER,
    checked_at     INTEGER,
    url            TEXT,
    etag           TEXT,
    last_modified  TEXT
) STRICT;

-- One row per record of a source. digest: Record::digest of record_json's content, so
-- that an unchanged record is recognised without decoding. imported_at: when this
-- content was first stored. Records are never deleted (imports may be partial); a
-- withdrawn record is kept with withdrawn = 1.
CREATE TABLE vuln_records (
    source       TEXT    NOT NULL REFERENCES vuln_sources (name) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    record_json  TEXT    NOT NULL,
    modified     TEXT,
    imported_at  INTEGER NOT NULL,
    withdrawn    INTEGER NOT NULL CHECK (withdrawn IN (0, 1)),
    PRIMARY KEY (source, id)
) STRICT;

-- The distinct (ecosystem, package) pairs of each record's affected entries, rewritten
-- with the record: what incremental re-correlation and `vulns check` look up.
CREATE TABLE vuln_keys (
    source     TEXT NOT NULL,
    id         TEXT NOT NULL,
    ecosystem  TEXT NOT NULL,
    package    TEXT NOT NULL,
    PRIMARY KEY (source, id, ecosystem, package),
    FOREIGN KEY (source, id) REFERENCES vuln_records (source, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX vuln_keys_package ON vuln_keys (ecosystem, package);

-- A single row: the generation, bumped by every import that changed a record.
CREATE TABLE vuln_meta (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
) STRICT;
INSERT INTO vuln_meta (id, generation) VALUES (1, 0);
