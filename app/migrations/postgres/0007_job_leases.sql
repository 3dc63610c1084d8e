-- One row per background job (re-check, rotation, mail, purge, …): the process holding it runs
-- the job's pass until lease_until (Unix seconds), then releases it; a lease whose holder died
-- is taken over once lease_until has passed. Several Onramp processes on one database so never
-- run the same pass at once (the per-connection claims still guard each connection).
CREATE TABLE job_leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
