-- Approvals, auto-approval rules and manifests (issue 14 §2). An approval names one
-- update (ecosystem, package, exact version) for one group; at most one active approval
-- per group and update. `update_sightings` keeps when the platform first saw an update
-- available in an organisation (a rule's "N days after first seen"). A manifest freezes
-- a group's approvals into exact versions; its items never change.

CREATE TABLE approval_rules (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    COLLATE "C" NOT NULL,
    group_id       TEXT    NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    security_only  BOOLEAN NOT NULL,
    min_severity   TEXT    NOT NULL,
    after_days     BIGINT  NOT NULL CHECK (after_days >= 0),
    created_by     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_run_at    BIGINT,
    UNIQUE (org_id, name)
);

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
    approved_at  BIGINT  NOT NULL,
    revoked_at   BIGINT,
    revoked_by   TEXT
);
CREATE UNIQUE INDEX approvals_active ON approvals (group_id, ecosystem, name, version)
    WHERE revoked_at IS NULL;
CREATE INDEX approvals_org ON approvals (org_id, approved_at);

CREATE TABLE update_sightings (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    ecosystem      TEXT    NOT NULL,
    name           TEXT    COLLATE "C" NOT NULL,
    version        TEXT    NOT NULL,
    first_seen_at  BIGINT  NOT NULL,
    PRIMARY KEY (org_id, ecosystem, name, version)
);

CREATE TABLE manifests (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    group_id    TEXT    NOT NULL,
    group_name  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    item_count  BIGINT  NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE manifest_items (
    manifest_id  TEXT NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    ecosystem    TEXT NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    PRIMARY KEY (manifest_id, ecosystem, name)
);
