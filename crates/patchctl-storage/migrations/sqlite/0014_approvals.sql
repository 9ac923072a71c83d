-- Approvals, auto-approval rules and manifests (issue 14 §2). An approval names one
-- update (ecosystem, package, exact version) for one group; at most one active approval
-- per group and update. `update_sightings` keeps when the platform first saw an update
-- available in an organisation (a rule's "N days after first seen"). A manifest freezes
-- a group's approvals into exact versions; its items never change.

CREATE TABLE approval_rules (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    group_id       TEXT    NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    security_only  INTEGER NOT NULL CHECK (security_only IN (0, 1)),
    min_severity   TEXT    NOT NULL,
    after_days     INTEGER NOT NULL CHECK (after_days >= 0),
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_run_at    INTEGER,
    UNIQUE (org_id, name)
) STRICT;

CREATE TABLE approvals (
    id           TEXT    NOT NULL PRIMARY KEY,
    org_id       TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    group_id     TEXT    NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    ecosystem    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    rule_id      TEXT    REFERENCES approval_rules (id) ON DELETE SET NULL,
    rule_name    TEXT,
    approved_by  TEXT    NOT NULL,
    approved_at  INTEGER NOT NULL,
    revoked_at   INTEGER,
    revoked_by   TEXT
) STRICT;
CREATE UNIQUE INDEX approvals_active ON approvals (group_id, ecosystem, name, version)
    WHERE revoked_at IS NULL;
CREATE INDEX approvals_org ON approvals (org_id, approved_at);

CREATE TABLE update_sightings (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    ecosystem      TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    first_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, ecosystem, name, version)
) STRICT;

CREATE TABLE manifests (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    group_id    TEXT    NOT NULL,
    group_name  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    item_count  INTEGER NOT NULL,
    UNIQUE (org_id, name)
) STRICT;

CREATE TABLE manifest_items (
    manifest_id  TEXT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    ecosystem    TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    PRIMARY KEY (manifest_id, ecosystem, name)
) STRICT;
