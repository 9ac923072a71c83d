-- Deployments (issue 14 §4): a manifest applied to groups in ordered rings. The target
-- hosts are frozen when the deployment is created: one `deployment_hosts` row each, with
-- its ring and stage. `deployment_events` keeps every transition of the deployment, its
-- rings and its hosts, oldest first (by `seq`).

CREATE TABLE deployments (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    manifest_id    TEXT    NOT NULL,
    manifest_name  TEXT    NOT NULL,
    groups_json    TEXT    NOT NULL,
    reboot         TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    reason         TEXT,
    current_ring   INTEGER,
    host_count     INTEGER NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (org_id, name)
) STRICT;
CREATE INDEX deployments_state ON deployments (state);

CREATE TABLE deployment_rings (
    deployment_id       TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    idx                 INTEGER NOT NULL,
    name                TEXT    NOT NULL,
    percent             INTEGER NOT NULL,
    max_failed_percent  INTEGER NOT NULL,
    soak_minutes        INTEGER NOT NULL,
    state               TEXT    NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    PRIMARY KEY (deployment_id, idx)
) STRICT;

CREATE TABLE deployment_hosts (
    deployment_id          TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    host_id                TEXT    NOT NULL,
    ring                   INTEGER NOT NULL,
    stage                  TEXT    NOT NULL,
    detail                 TEXT,
    packages               INTEGER NOT NULL,
    baseline_command       TEXT,
    baseline_failed_units  TEXT,
    install_command        TEXT,
    verify_command         TEXT,
    boot_before            INTEGER,
    stage_since            INTEGER NOT NULL,
    healthy_since          INTEGER,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, host_id)
) STRICT;
CREATE INDEX deployment_hosts_ring_stage ON deployment_hosts (deployment_id, ring, stage);

CREATE TABLE deployment_events (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    deployment_id  TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    at             INTEGER NOT NULL,
    subject        TEXT    NOT NULL,
    ring           INTEGER,
    host_id        TEXT,
    from_state     TEXT,
    to_state       TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    reason         TEXT
) STRICT;
CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, seq);
