-- What an API key may do (issue #14, docs/spec/datasets.md "Access"): the
-- datasets it may use (null: every one) and the job kinds it may create.
-- Existing keys keep full access.
alter table api_keys
    add column datasets   text[],
    add column can_import boolean not null default true,
    add column can_export boolean not null default true,
    add constraint api_keys_can_something check (can_import or can_export);
