#include "core/error.h"

#include "guard.h"

#include <cstring>
#include <new>

namespace sfb::pg {

namespace {

// Copies `src` into a fixed buffer, cutting at a UTF-8 character boundary so the server never sees a
// broken multibyte sequence in an error message.
void copy_truncated(char *dst, size_t capacity, const char *src) noexcept {
    size_t len = std::strlen(src);
    if (len >= capacity) {
        len = capacity - 1;
        while (len > 0 && (static_cast<unsigned char>(src[len]) & 0xC0) == 0x80)
            --len;
    }
    std::memcpy(dst, src, len);
    dst[len] = '\0';
}

int sqlstate_for(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::InvalidOptionName:
            return ERRCODE_FDW_INVALID_OPTION_NAME;
        case ErrorKind::MissingOption:
            return ERRCODE_FDW_OPTION_NAME_NOT_FOUND;
        case ErrorKind::InvalidParameter:
            return ERRCODE_INVALID_PARAMETER_VALUE;
        case ErrorKind::DataException:
            return ERRCODE_DATA_EXCEPTION;
        case ErrorKind::ExternalService:
            return ERRCODE_FDW_ERROR;
        case ErrorKind::Connection:
            return ERRCODE_CONNECTION_FAILURE;
        case ErrorKind::Internal:
            break;
    }
    return ERRCODE_INTERNAL_ERROR;
}

void fill(detail::CaughtError &out, int sqlstate, const char *message, const char *detail = "",
          const char *hint = "") noexcept {
    out.caught = true;
    out.sqlstate = sqlstate;
    copy_truncated(out.message, sizeof out.message, message);
    copy_truncated(out.detail, sizeof out.detail, detail);
    copy_truncated(out.hint, sizeof out.hint, hint);
}

}  // namespace

void raise_error(int sqlstate, std::string message, std::string detail, std::string hint) {
    throw PgError(sqlstate, std::move(message), std::move(detail), std::move(hint));
}

namespace detail {

void capture_current_exception(CaughtError &out) noexcept {
    try {
        throw;
    } catch (const PgError &e) {
        fill(out, e.sqlstate(), e.what(), e.detail().c_str(), e.hint().c_str());
    } catch (const Error &e) {
        fill(out, sqlstate_for(e.kind()), e.what());
    } catch (const std::bad_alloc &) {
        fill(out, ERRCODE_OUT_OF_MEMORY, "out of memory in sf_bulk");
    } catch (const std::invalid_argument &e) {
        fill(out, ERRCODE_INVALID_PARAMETER_VALUE, e.what());
    } catch (const std::exception &e) {
        fill(out, ERRCODE_INTERNAL_ERROR, "sf_bulk internal error", e.what());
    } catch (...) {
        fill(out, ERRCODE_INTERNAL_ERROR, "sf_bulk internal error", "an unknown C++ exception was thrown");
    }
}

void rethrow_as_pg_error(const CaughtError &err) {
    ereport(ERROR, (errcode(err.sqlstate), errmsg_internal("%s", err.message),
                    err.detail[0] ? errdetail_internal("%s", err.detail) : 0,
                    err.hint[0] ? errhint("%s", err.hint) : 0));
    pg_unreachable();
}

Datum guarded_call(Datum (*body)(FunctionCallInfo), FunctionCallInfo fcinfo) {
    CaughtError err;
    err.caught = false;
    Datum result = 0;
    try {
        result = body(fcinfo);
    } catch (...) {
        capture_current_exception(err);
    }
    if (err.caught)
        rethrow_as_pg_error(err);
    return result;
}

PgError take_pg_error(MemoryContext context) {
    MemoryContextSwitchTo(context);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    PgError error(edata->sqlerrcode, edata->message ? edata->message : "unknown error",
                  edata->detail ? edata->detail : "", edata->hint ? edata->hint : "",
                  edata->context ? edata->context : "");
    FreeErrorData(edata);
    return error;
}

}  // namespace detail

void guarded_void_call(void (*body)(void *), void *arg) {
    detail::CaughtError err;
    err.caught = false;
    try {
        body(arg);
    } catch (...) {
        detail::capture_current_exception(err);
    }
    if (err.caught)
        detail::rethrow_as_pg_error(err);
}

}  // namespace sfb::pg
