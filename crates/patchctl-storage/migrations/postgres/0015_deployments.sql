-- Deployments (issue 14 §4): a manifest applied to groups in ordered rings. The target
-- hosts are frozen when the deployment is created: one `deployment_hosts` row each, with
-- its ring and stage. `deployment_events` keeps every transition of the deployment, its
-- rings and its hosts, oldest first (by `seq`).

CREATE TABLE deployments (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    COLLATE "C" NOT NULL,
    manifest_id    TEXT    NOT NULL,
    manifest_name  TEXT    NOT NULL,
    groups_json    TEXT    NOT NULL,
    reboot         TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    reason         TEXT,
    current_ring   BIGINT,
    host_count     BIGINT  NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX deployments_state ON deployments (state);

CREATE TABLE deployment_rings (
    deployment_id       TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    idx                 BIGINT  NOT NULL,
    name                TEXT    NOT NULL,
    percent             BIGINT  NOT NULL,
    max_failed_percent  BIGINT  NOT NULL,
    soak_minutes        BIGINT  NOT NULL,
    state               TEXT    NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    PRIMARY KEY (deployment_id, idx)
);

CREATE TABLE deployment_hosts (
    deployment_id          TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    host_id                TEXT    NOT NULL,
    ring                   BIGINT  NOT NULL,
    stage                  TEXT    NOT NULL,
    detail                 TEXT,
    packages               BIGINT  NOT NULL,
    baseline_command       TEXT,
    baseline_failed_units  TEXT,
    install_command        TEXT,
    verify_command         TEXT,
    boot_before            BIGINT,
    stage_since            BIGINT  NOT NULL,
    healthy_since          BIGINT,
    updated_at             BIGINT  NOT NULL,
    PRIMARY KEY (deployment_id, host_id)
);
CREATE INDEX deployment_hosts_ring_stage ON deployment_hosts (deployment_id, ring, stage);

CREATE TABLE deployment_events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployment_id  TEXT    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    at             BIGINT  NOT NULL,
    subject        TEXT    NOT NULL,
    ring           BIGINT,
    host_id        TEXT,
    from_state     TEXT,
    to_state       TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    reason         TEXT
);
CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, seq);
