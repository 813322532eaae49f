-- Rejected rows as the file held them (issue #18) and tables that run on over
-- continuation sheets (issue #12).
--
-- A row is identified by its position among the file's data rows (`ord`):
-- sheet row numbers repeat from one sheet to the next. `cells` holds every
-- field, typed (null, string, number, boolean, {"date": serial},
-- {"error": text}); `record` the record of a row whose fields could not be
-- aligned with the header; `failed_field` the field whose cell decided.
alter table job_rejections
    add column ord bigint,
    add column sheet text,
    add column record text,
    add column failed_field integer;
update job_rejections set ord = row_number where ord is null;
alter table job_rejections
    alter column ord set not null,
    drop constraint job_rejections_pkey,
    add constraint job_rejections_pkey primary key (job_id, ord);

-- Where each part starts and ends, when the file is a workbook.
alter table job_parts
    add column first_sheet text,
    add column last_sheet text;

-- The header of an import's file, by field index: the error report lays
-- its rows out under it.
alter table jobs add column source_header jsonb;
