-- Rate limits every node shares (issue 16): token buckets by name.
CREATE TABLE rate_buckets (
    bucket TEXT    PRIMARY KEY,
    tokens REAL    NOT NULL,
    at     INTEGER NOT NULL
);
