// Storing Salesforce's per-row results in sf_bulk.results, and pairing them with the rows sent.
//
// Both functions run inside a transaction the caller opened (the worker's storing transaction) with an SPI
// connection. store_result_file is C++ that calls PostgreSQL only through pg_call, so it may be called from
// C++ frames; match_keys makes PostgreSQL calls only and must itself be run through pg_call.
#pragma once

#include "core/csv.h"
#include "core/ingest_machine.h"

#include <cstdint>

namespace sfb::pg {

// Streams one result file (or, for uploads that never reached Salesforce, the spool file itself) into
// sf_bulk.results as rows of `file.kind`, in batches of bounded memory. Returns the number of rows; 0 when
// the file does not exist (never downloaded).
std::int64_t store_result_file(std::int64_t job_id, int chunk_no, const ChunkResultFile &file,
                               csv::Delimiter delimiter);

// Gives each stored result of a chunk the key of the row it answers (jobs with key columns), clears the
// chunk's rows in sf_bulk.sent and records how many results found no row. Returns that number.
std::int64_t match_keys(std::int64_t job_id, int chunk_no);

// Whether `table` (sf_bulk.results or sf_bulk.sent) holds a row of this upload. PostgreSQL calls only.
bool upload_has_rows(const char *table, std::int64_t job_id, int chunk_no);

}  // namespace sfb::pg
