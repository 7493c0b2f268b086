// Names of the files of a job in the spool directory, below the job's prefix (pg/spool.h job_file_prefix:
// every file of a job starts with it, which is how its files are found and removed when it ends).
#pragma once
#include "core/core_only.h"

#include "core/bulk_api.h"

#include <string>

namespace sfb {

// "<prefix>N.csv": upload N (1-based) of a job, as the enqueueing backend writes it.
std::string upload_file_name(const std::string &job_prefix, int upload_no);

// "<prefix>pageN.csv": result page N (1-based) of a query job, as the worker downloads it. "page" keeps the
// name apart from an upload's, so a job's files stay recognisable by kind.
std::string query_page_file_name(const std::string &job_prefix, int page_no);

// "<upload without .csv>.successful.csv" (.failed, .unprocessed): where that upload's result download goes.
std::string result_file_name(const std::string &upload_file, IngestResult kind);

}  // namespace sfb
