-- Remediation deadlines, exceptions and compliance (issue 14).
--
-- When the CVE engine first saw each vulnerable finding on a host: one row per
-- (host, vulnerability id, package), written in bulk with ON CONFLICT DO NOTHING, so a
-- finding keeps the time it was first seen (also when it goes and comes back). The
-- primary key leads with the organisation so that one organisation's rows are one range.
CREATE TABLE finding_first_seen (
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    host_id        TEXT    NOT NULL,
    vuln_id        TEXT    NOT NULL,
    package        TEXT    NOT NULL,
    first_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, host_id, vuln_id, package)
) STRICT, WITHOUT ROWID;

-- Accepted risk: a vulnerability (CVE or advisory id) on one host, one group or every
-- host of the organisation, with a reason, an owner and a mandatory expiry. Valid while
-- not revoked and expires_at is in the future: nothing runs to expire a row.
CREATE TABLE exceptions (
    id          TEXT    NOT NULL PRIMARY KEY,
    org_id      TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    vuln_id     TEXT    NOT NULL,
    host_id     TEXT,
    group_id    TEXT,
    reason      TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT,
    CHECK (host_id IS NULL OR group_id IS NULL)
) STRICT;
CREATE INDEX exceptions_org_vuln ON exceptions (org_id, vuln_id);
CREATE INDEX exceptions_org_created ON exceptions (org_id, created_at);

-- Each organisation's remediation deadlines in days (no row: the defaults).
CREATE TABLE deadline_policies (
    org_id         TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    critical_days  INTEGER NOT NULL,
    high_days      INTEGER NOT NULL,
    medium_days    INTEGER NOT NULL,
    low_days       INTEGER NOT NULL,
    kev_days       INTEGER NOT NULL,
    due_soon_days  INTEGER NOT NULL,
    updated_by     TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
