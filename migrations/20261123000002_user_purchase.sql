-- The reference dataset, as shared/spec/user_purchase.md defines it.
create table user_purchase (
    cpf                         text not null,
    private                     boolean not null,
    incompleto                  boolean not null,
    data_ultima_compra          date,
    ticket_medio                numeric(14, 2),
    ticket_ultima_compra        numeric(14, 2),
    loja_mais_frequente         text,
    loja_ultima_compra          text,
    cpf_valido                  boolean not null,
    loja_mais_frequente_valida  boolean,
    loja_ultima_compra_valida   boolean,
    -- bookkeeping: the job that last wrote the row, and when
    last_job_id                 uuid,
    updated_at                  timestamptz not null default now(),
    constraint user_purchase_pkey primary key (cpf),
    constraint user_purchase_cpf_format check (cpf ~ '^[0-9]{11}$'),
    constraint user_purchase_loja_mais_frequente_format check (loja_mais_frequente ~ '^[0-9A-Z]{14}$'),
    constraint user_purchase_loja_ultima_compra_format check (loja_ultima_compra ~ '^[0-9A-Z]{14}$'),
    constraint user_purchase_loja_mais_frequente_valida_null
        check ((loja_mais_frequente is null) = (loja_mais_frequente_valida is null)),
    constraint user_purchase_loja_ultima_compra_valida_null
        check ((loja_ultima_compra is null) = (loja_ultima_compra_valida is null))
);

-- Export filters: purchase date ranges.
create index user_purchase_data_ultima_compra_idx on user_purchase (data_ultima_compra);
