-- The platform nodes sharing this database (issue 16 §3): each node beats every 15 s;
-- the nodes seen in the last 45 s divide the in-memory rate limits between them (each
-- admits 1/N of the limit). A node removes its row when it stops; rows not seen for a
-- day are deleted by the next beat of any node.
CREATE TABLE nodes (
    id         TEXT   PRIMARY KEY,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL,
    version    TEXT   NOT NULL,
    address    TEXT
);
CREATE INDEX nodes_seen_at ON nodes (seen_at);
