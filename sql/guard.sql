-- The C++/PostgreSQL guard, both directions, through test-only entry points of the real module.
\set VERBOSITY default
CREATE EXTENSION sf_bulk;
CREATE SCHEMA selftest;
CREATE FUNCTION selftest.throw(kind text) RETURNS text
  AS 'sf_bulk', 'sfb_selftest_throw' LANGUAGE C STRICT;
CREATE FUNCTION selftest.inner_guard(input text) RETURNS int
  AS 'sf_bulk', 'sfb_selftest_inner' LANGUAGE C STRICT;
CREATE FUNCTION selftest.throw_in_pg_call(kind text) RETURNS void
  AS 'sf_bulk', 'sfb_selftest_throw_in_pg_call' LANGUAGE C STRICT;
CREATE FUNCTION selftest.destructions() RETURNS int
  AS 'sf_bulk', 'sfb_selftest_destructions' LANGUAGE C STRICT;

-- Show the SQLSTATE of each error next to its message.
CREATE FUNCTION selftest.sqlstate_of(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || left(SQLERRM, 80);
END $$;

-- C++ exceptions thrown in core become errors with the SQLSTATE their kind calls for.
SELECT selftest.throw('none');
SELECT selftest.sqlstate_of($$SELECT selftest.throw('core_error')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw('invalid_argument')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw('runtime_error')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw('bad_alloc')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw('unknown')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw('pg_error')$$);
-- Detail and hint survive the trip through C++.
SELECT selftest.throw('pg_error');
SELECT selftest.throw('runtime_error');
-- A long multibyte message is cut to the buffer at a character boundary, not inside a character.
DO $$
BEGIN
  PERFORM selftest.throw('long_message');
EXCEPTION WHEN data_exception THEN
  RAISE NOTICE 'cut to % bytes or fewer: %, a whole-character prefix of the original: %', 1023,
    octet_length(SQLERRM) BETWEEN 1000 AND 1023, starts_with(repeat('ünïcödé ', 700), SQLERRM);
END $$;

-- Every Sentinel so far was destroyed while its exception unwound.
SELECT selftest.destructions() AS destructions_after_throws;

-- A PostgreSQL ERROR under the inner guard: destructors run, the original SQLSTATE and message reach us.
SELECT selftest.inner_guard('41');
SELECT selftest.inner_guard('abc');
SELECT selftest.sqlstate_of($$SELECT selftest.inner_guard('99999999999')$$);
SELECT selftest.destructions() AS destructions_after_inner;

-- A C++ exception inside the inner guard's PG_TRY block becomes an ERROR there, with its SQLSTATE; the
-- session's error handling is intact afterwards (a stale PG_TRY frame would crash the next ERROR).
SELECT selftest.sqlstate_of($$SELECT selftest.throw_in_pg_call('core_error')$$);
SELECT selftest.sqlstate_of($$SELECT selftest.throw_in_pg_call('bad_alloc')$$);
SELECT selftest.inner_guard('not a number');
SELECT selftest.destructions() AS destructions_after_pg_call_throws;

-- The session and its transactions keep working after all of that.
BEGIN;
SAVEPOINT s;
SELECT selftest.throw('core_error');
ROLLBACK TO SAVEPOINT s;
SELECT selftest.inner_guard('7') + 1 AS still_working;
COMMIT;
SELECT count(*) FROM pg_extension WHERE extname = 'sf_bulk';

DROP SCHEMA selftest CASCADE;
DROP EXTENSION sf_bulk;
