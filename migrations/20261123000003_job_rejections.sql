-- Rejected rows of an import, committed with their part, so the error report
-- of a resumed import holds every rejected row exactly once.
create table job_rejections (
    job_id      uuid not null constraint job_rejections_job_fk references jobs (id) on delete cascade,
    part_no     integer not null,
    row_number  bigint not null,
    reason      text not null,
    message     text not null,
    cells       jsonb not null,
    constraint job_rejections_pkey primary key (job_id, row_number)
);
