-- The dashboard's host list (issue 13): an unfiltered page ordered by host name reads
-- this index in order (hostname, then id as the tie-break) and the count of an
-- organisation's hosts reads only the index, at 100,000 hosts.
CREATE INDEX hosts_org_name ON hosts (org_id, hostname, id);
