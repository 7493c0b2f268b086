// The C++/PostgreSQL boundary (docs/architecture.md §4). Two guards, one implementation:
//
//  * Outer guard: every function PostgreSQL calls is defined with SFB_PG_FUNCTION, which runs the body
//    inside try/catch. A caught exception is copied into a fixed-size plain buffer (no allocation, no
//    PostgreSQL call inside the catch); only after the try statement has ended, with every C++ object
//    destroyed, is the PostgreSQL error raised.
//  * Inner guard: pg_call() runs a single PostgreSQL call that may ereport(ERROR) under PG_TRY. On error
//    it copies the error data, flushes the error state, leaves the PG_TRY and then throws PgError, so the
//    C++ frames above unwind normally and the outer guard re-raises the original SQLSTATE and message.
#pragma once

#include "pg_headers.h"

#include <string>
#include <type_traits>
#include <utility>

namespace sfb::pg {

// A PostgreSQL error travelling through C++ frames. It keeps what the user must see unchanged.
class PgError : public std::exception {
  public:
    PgError(int sqlstate, std::string message, std::string detail = {}, std::string hint = {},
            std::string context = {})
        : sqlstate_(sqlstate),
          message_(std::move(message)),
          detail_(std::move(detail)),
          hint_(std::move(hint)),
          context_(std::move(context)) {}
    const char *what() const noexcept override { return message_.c_str(); }
    int sqlstate() const noexcept { return sqlstate_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }
    // The error's CONTEXT lines, innermost first (e.g. COPY's "line 3, column x: ..."). Only for messages
    // that are stored rather than raised (a query job's load error): the outer guard does not re-raise it.
    const std::string &context() const noexcept { return context_; }

  private:
    int sqlstate_;
    std::string message_;
    std::string detail_;
    std::string hint_;
    std::string context_;
};

// Raises an ERROR from C++ code: throws PgError, which the outer guard turns into ereport(ERROR).
[[noreturn]] void raise_error(int sqlstate, std::string message, std::string detail = {},
                              std::string hint = {});

// Runs `body` (no arguments, no result) under the outer guard: for callbacks and worker entry points.
void guarded_void_call(void (*body)(void *), void *arg);

// The machinery of the two guards; use SFB_PG_FUNCTION, guarded_void_call and pg_call instead.
namespace detail {

// Trivially destructible buffer the outer guard fills inside a catch block.
struct CaughtError {
    bool caught;
    int sqlstate;
    char message[1024];
    char detail[1024];
    char hint[512];
};

// Fills `out` from the exception currently being handled. Call only from inside a catch block.
void capture_current_exception(CaughtError &out) noexcept;

// Raises the captured error as a PostgreSQL ERROR. Never returns. Call only outside any catch block.
[[noreturn]] void rethrow_as_pg_error(const CaughtError &err);

// Runs `body` (a function of the PG_FUNCTION_ARGS shape) under the outer guard.
Datum guarded_call(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo);

// Copies the current PostgreSQL error (inside PG_CATCH, after switching back to `context`), flushes the
// error state and returns a PgError to throw once PG_TRY has ended.
PgError take_pg_error(MemoryContext context);

// Runs `work` inside a PG_TRY block: a C++ exception must never unwind through PG_TRY (its PG_END_TRY would
// not run and PostgreSQL's error stack would point at a dead frame), so one thrown by `work` (bad_alloc
// while copying a value, say) is turned into an ERROR here, which PG_CATCH then handles.
template <typename Work>
void run_converting_exceptions(Work work) {
    CaughtError err;
    err.caught = false;
    try {
        work();
    } catch (...) {
        capture_current_exception(err);
    }
    if (err.caught)
        rethrow_as_pg_error(err);
}

}  // namespace detail

// Inner guard: runs one PostgreSQL call that may raise an ERROR and turns that ERROR into PgError.
// The callable must be trivially destructible and the result a scalar: a longjmp out of `fn` would skip their
// destructors, so nothing with a destructor may live between this frame and the failing call.
template <typename Fn>
auto pg_call(Fn fn) -> decltype(fn()) {
    using Result = decltype(fn());
    static_assert(std::is_trivially_destructible_v<Fn>, "pg_call needs a callable without a destructor");
    MemoryContext context = CurrentMemoryContext;
    volatile bool failed = false;
    if constexpr (std::is_void_v<Result>) {
        PG_TRY();
        {
            detail::run_converting_exceptions([&fn] { fn(); });
        }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed)
            throw detail::take_pg_error(context);
    } else {
        // volatile: the value is written inside PG_TRY, between sigsetjmp and a possible siglongjmp.
        static_assert(std::is_scalar_v<Result>, "pg_call results must be scalars (Datum, pointers, numbers)");
        volatile Result result{};
        PG_TRY();
        {
            detail::run_converting_exceptions([&fn, &result] { result = fn(); });
        }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed)
            throw detail::take_pg_error(context);
        return result;
    }
}

}  // namespace sfb::pg

// Defines a guarded SQL-callable C function `name`. The body that follows is a C++ function of the
// PG_FUNCTION_ARGS shape; exceptions thrown from it become PostgreSQL errors.
#define SFB_PG_FUNCTION(name)                                        \
    static Datum name##_body(PG_FUNCTION_ARGS);                      \
    extern "C" {                                                     \
    PG_FUNCTION_INFO_V1(name);                                       \
    Datum name(PG_FUNCTION_ARGS) {                                   \
        return ::sfb::pg::detail::guarded_call(name##_body, fcinfo); \
    }                                                                \
    }                                                                \
    static Datum name##_body(PG_FUNCTION_ARGS)
