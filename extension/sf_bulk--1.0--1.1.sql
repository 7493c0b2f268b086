-- sf_bulk 1.0 -> 1.1: every text column of sf_bulk's tables that holds a closed set of values gets a named CHECK
-- constraint, so that a value the C++ does not know is refused when it is written, instead of being read back
-- as a default (an unknown chunks.step used to become 'spooled': a second Salesforce job and a second upload).
-- Nothing else changes. sf_bulk--1.1.sql is the same schema for a fresh install; test/scenarios/upgrade.sh
-- compares the two catalogs.
--
-- Already constrained in 1.0, under the names PostgreSQL generated (kept as they are):
--   jobs_operation_check, jobs_nulls_check, jobs_state_check, results_kind_check ("char").
-- Free text on purpose (sql/catalog.sql lists them): names, ids, paths, messages, and chunks.sf_state, which
-- keeps Salesforce's job state verbatim (an unrecognised state is polled on, and kept for the messages).
\echo Use "ALTER EXTENSION sf_bulk UPDATE TO '1.1'" to load this file. \quit

-- chunks.step: the durable step of an upload. Written from to_string(ChunkStep), i.e. kStepNames in
-- src/core/ingest_machine.cpp (the enum ChunkStep in ingest_machine.h), by src/pg/job_store.cpp
-- (write_step; 'failed' directly in fail_upload's UPDATE), 'spooled' by the column default
-- (src/pg/enqueue.cpp's finish_job leaves it); read back with parse_chunk_step.
ALTER TABLE sf_bulk.chunks
  ADD CONSTRAINT chunks_step_check
  CHECK (step IN ('spooled', 'creating', 'created', 'uploading', 'uploaded', 'closing', 'processing', 'fetching',
                  'done', 'failed', 'aborted'));

-- jobs.column_delimiter: the caller's text as given (src/pg/enqueue.cpp insert_job), accepted and read back by
-- csv::parse_delimiter (src/core/csv.cpp kDelimiters), which ignores ASCII case: 'tab' is a valid 1.0 row.
-- upper() under the "C" collation changes ASCII letters only, as that parser does.
ALTER TABLE sf_bulk.jobs
  ADD CONSTRAINT jobs_column_delimiter_check
  CHECK (pg_catalog.upper(column_delimiter COLLATE "C")
         IN ('COMMA', 'TAB', 'SEMICOLON', 'PIPE', 'CARET', 'BACKQUOTE'));

-- jobs.line_ending: fixes a 1.0 bug. csv::parse_line_ending (src/core/csv.cpp) accepts 'LF' and 'CRLF' in any
-- ASCII case and src/pg/enqueue.cpp stores the caller's text, but 1.0's check was case-sensitive: line_ending =>
-- 'crlf' passed validation and then failed the INSERT with a bare constraint violation. Same rule as above.
ALTER TABLE sf_bulk.jobs
  DROP CONSTRAINT jobs_line_ending_check,
  ADD CONSTRAINT jobs_line_ending_check
  CHECK (pg_catalog.upper(line_ending COLLATE "C") IN ('LF', 'CRLF'));

-- jobs.phase: what a queued or running job is doing, NULL once spooled and once ended. 'spooling' is written by
-- src/pg/enqueue.cpp (insert_job), the others by phase_of(ChunkStep) in src/pg/job_store.cpp; NULL by
-- enqueue.cpp's finish_job and job_store.cpp's finish_jobs.
ALTER TABLE sf_bulk.jobs
  ADD CONSTRAINT jobs_phase_check
  CHECK (phase IN ('spooling', 'creating Salesforce job', 'uploading', 'closing upload', 'processing',
                   'fetching results', 'storing results'));
