// Reading one column of an SPI result row, the same way in every file that reads the job store: NULL becomes
// the stated default (text: "", numbers: the caller's). PostgreSQL calls only (they may raise ERROR): call
// them inside pg_call / in_transaction, with no C++ object alive in the frame.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "executor/spi.h"
}

namespace sfb::pg {

inline const char *text_column(HeapTuple tuple, TupleDesc desc, int n) {
    char *value = SPI_getvalue(tuple, desc, n);
    return value ? value : "";
}

// nullptr for NULL.
inline const char *nullable_text(HeapTuple tuple, TupleDesc desc, int n) {
    return SPI_getvalue(tuple, desc, n);
}

inline int64 int8_column(HeapTuple tuple, TupleDesc desc, int n, int64 if_null) {
    bool is_null;
    Datum d = SPI_getbinval(tuple, desc, n, &is_null);
    return is_null ? if_null : DatumGetInt64(d);
}

inline int int4_column(HeapTuple tuple, TupleDesc desc, int n) {
    bool is_null;
    Datum d = SPI_getbinval(tuple, desc, n, &is_null);
    return is_null ? 0 : DatumGetInt32(d);
}

// false for NULL.
inline bool bool_column(HeapTuple tuple, TupleDesc desc, int n) {
    bool is_null;
    Datum d = SPI_getbinval(tuple, desc, n, &is_null);
    return !is_null && DatumGetBool(d);
}

}  // namespace sfb::pg
