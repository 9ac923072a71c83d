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
    first_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, host_id, vuln_id, package)
);

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
    expires_at  BIGINT NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    revoked_by  TEXT,
    CHECK (host_id IS NULL OR group_id IS NULL)
);
CREATE INDEX exceptions_org_vuln ON exceptions (org_id, vuln_id);
CREATE INDEX exceptions_org_created ON exceptions (org_id, created_at);

-- Each organisation's remediation deadlines in days (no row: the defaults).
CREATE TABLE deadline_policies (
    org_id         TEXT    NOT NULL PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    critical_days  BIGINT NOT NULL,
    high_days      BIGINT NOT NULL,
    medium_days    BIGINT NOT NULL,
    low_days       BIGINT NOT NULL,
    kev_days       BIGINT NOT NULL,
    due_soon_days  BIGINT NOT NULL,
    updated_by     TEXT    NOT NULL,
    updated_at     BIGINT NOT NULL
);
