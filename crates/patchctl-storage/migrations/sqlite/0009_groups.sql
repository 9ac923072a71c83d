-- Groups (issue 14): a group is a selector (JSON, `patchctl_proto::policy::groups::
-- GroupSelector`) over operator-set tags (`host_tags`) and the facts the agent reports
-- (os-release ID, ID_LIKE and VERSION_ID, the config's tags), so membership follows the
-- hosts as they change. Every organisation has the group `all` (empty selector).

CREATE TABLE groups (
    id             TEXT    NOT NULL PRIMARY KEY,
    org_id         TEXT    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL DEFAULT '',
    selector_json  TEXT    NOT NULL,
    created_by     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (org_id, name)
) STRICT;

CREATE TABLE host_tags (
    host_id  TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    org_id   TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (host_id, tag)
) STRICT;
CREATE INDEX host_tags_org ON host_tags (org_id, tag);

-- The facts groups select on, derived from the stored system document by the database
-- itself, so that every statement writing `system_json` keeps them current.
ALTER TABLE hosts ADD COLUMN os_id TEXT
    GENERATED ALWAYS AS (COALESCE(json_extract(system_json, '$.os.id'), '')) VIRTUAL;
ALTER TABLE hosts ADD COLUMN os_like TEXT
    GENERATED ALWAYS AS (COALESCE(json_extract(system_json, '$.os.id_like'), '[]')) VIRTUAL;
ALTER TABLE hosts ADD COLUMN os_version TEXT
    GENERATED ALWAYS AS (COALESCE(json_extract(system_json, '$.os.version_id'), '')) VIRTUAL;
ALTER TABLE hosts ADD COLUMN agent_tags TEXT
    GENERATED ALWAYS AS (COALESCE(json_extract(system_json, '$.tags'), '[]')) VIRTUAL;

-- The group `all` of every organisation that exists now (new ones get it with the
-- organisation). The id is a random version-4 UUID in its hyphenated form.
INSERT INTO groups (id, org_id, name, description, selector_json, created_by, created_at, updated_at)
SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||
             substr('89ab', 1 + (abs(random()) % 4), 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12)),
       id, 'all', 'Every host of the organisation', '{}', 'platform', created_at, created_at
FROM (SELECT id, created_at, hex(randomblob(16)) AS h FROM orgs);
