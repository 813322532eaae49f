-- Bookkeeping: API keys (hashed), jobs and the parts of an import.
-- Constraint names are stable: the API maps them to messages.

create table api_keys (
    id          uuid primary key,
    name        text not null,
    key_hash    text not null constraint api_keys_key_hash_unique unique,
    key_prefix  text not null,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

create table jobs (
    id              uuid primary key,
    owner_key_id    uuid not null constraint jobs_owner_key_fk references api_keys (id),
    kind            text not null constraint jobs_kind_check check (kind in ('import', 'export')),
    dataset         text not null,
    state           text not null constraint jobs_state_check
                        check (state in ('awaiting_upload', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    format          text,
    -- what the user asked for: filter (export), conflict policy and dry run (import)
    options         jsonb not null default '{}'::jsonb,
    filename        text,
    object_key      text,
    declared_size   bigint constraint jobs_declared_size_check check (declared_size >= 0),
    object_size     bigint,
    etag            text,
    upload_id       text,
    -- progress
    rows_done       bigint not null default 0,
    bytes_done      bigint not null default 0,
    parts_done      integer not null default 0,
    parts_total     integer,
    -- results: totals by counter name, warnings, the reason of a failure
    counts          jsonb not null default '{}'::jsonb,
    warnings        jsonb not null default '[]'::jsonb,
    error           text,
    result_key      text,
    -- a worker's claim: redelivered messages wait for it or take over when it lapses
    attempts        integer not null default 0,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    constraint jobs_finished_when_terminal
        check ((state in ('succeeded', 'failed', 'cancelled')) = (finished_at is not null)),
    constraint jobs_failed_has_error check (state <> 'failed' or error is not null)
);

-- GET /jobs lists a key's recent jobs.
create index jobs_owner_created_idx on jobs (owner_key_id, created_at desc);
-- The import worker finds a job by the object an S3 event names.
create index jobs_object_key_idx on jobs (object_key) where object_key is not null;

create table job_parts (
    job_id          uuid not null constraint job_parts_job_fk references jobs (id) on delete cascade,
    part_no         integer not null constraint job_parts_part_no_check check (part_no >= 1),
    state           text not null constraint job_parts_state_check
                        check (state in ('running', 'succeeded', 'failed')),
    first_row       bigint,
    last_row        bigint,
    rows_read       integer not null default 0,
    inserted        integer not null default 0,
    updated         integer not null default 0,
    rejected        integer not null default 0,
    counts          jsonb not null default '{}'::jsonb,
    error           text,
    updated_at      timestamptz not null default now(),
    constraint job_parts_pkey primary key (job_id, part_no)
);
