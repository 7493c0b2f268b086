// Test-only entry points that prove the C++/PostgreSQL guard works in both directions. They are part of
// every build (so the tests exercise the shipped module) but are not created by the extension script:
// sql/guard.sql declares them with CREATE FUNCTION ... LANGUAGE C, which only a superuser can do.
#include "core/error.h"

#include "pg_headers.h"

#include "guard.h"

#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace {

// Counts destructor runs of Sentinel objects: plain data, so it is safe to read from any frame.
int sentinel_destructions = 0;

struct Sentinel {
    std::string payload = std::string(64, 'x');  // owns heap memory, like real C++ frames do
    ~Sentinel() { ++sentinel_destructions; }
};

}  // namespace

// sfb_selftest_throw(kind text) raises, from C++, the kind of failure named.
SFB_PG_FUNCTION(sfb_selftest_throw) {
    char *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    {
        Sentinel sentinel;
        if (std::strcmp(kind, "core_error") == 0)
            throw sfb::Error(sfb::ErrorKind::InvalidParameter, "core rejected the value");
        if (std::strcmp(kind, "invalid_argument") == 0)
            throw std::invalid_argument("std::invalid_argument from core");
        if (std::strcmp(kind, "runtime_error") == 0)
            throw std::runtime_error("something broke inside");
        if (std::strcmp(kind, "bad_alloc") == 0)
            throw std::bad_alloc();
        if (std::strcmp(kind, "unknown") == 0)
            throw 42;
        if (std::strcmp(kind, "pg_error") == 0)
            sfb::pg::raise_error(ERRCODE_CHECK_VIOLATION, "raised as PgError", "with a detail", "and a hint");
        if (std::strcmp(kind, "long_message") == 0) {
            std::string message;
            while (message.size() < 5000)
                message += "ünïcödé ";
            throw sfb::Error(sfb::ErrorKind::DataException, message);
        }
    }  // the sentinel is gone before cstring_to_text may raise an ERROR
    PG_RETURN_TEXT_P(cstring_to_text("no exception"));
}

// sfb_selftest_inner(input text) parses `input` as an integer through int4in, a PostgreSQL function
// that raises ERROR on bad input, under the inner guard while C++ objects are alive in this frame.
SFB_PG_FUNCTION(sfb_selftest_inner) {
    char *input = text_to_cstring(PG_GETARG_TEXT_PP(0));
    Sentinel sentinel;
    Datum value = sfb::pg::pg_call([input] { return DirectFunctionCall1(int4in, CStringGetDatum(input)); });
    PG_RETURN_DATUM(value);
}

// sfb_selftest_destructions() returns how many Sentinel destructors have run in this backend.
SFB_PG_FUNCTION(sfb_selftest_destructions) {
    PG_RETURN_INT32(sentinel_destructions);
}

// sfb_selftest_throw_in_pg_call(kind text): a C++ exception thrown inside the inner guard's PG_TRY block
// (which must never unwind through it) becomes an ERROR with the exception's SQLSTATE.
SFB_PG_FUNCTION(sfb_selftest_throw_in_pg_call) {
    char *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    {
        Sentinel sentinel;
        sfb::pg::pg_call([kind] {
            if (std::strcmp(kind, "core_error") == 0)
                throw sfb::Error(sfb::ErrorKind::InvalidParameter, "thrown inside the inner guard");
            throw std::bad_alloc();
        });
    }
    PG_RETURN_VOID();
}
