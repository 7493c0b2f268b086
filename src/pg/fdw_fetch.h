// The rows of one foreign-table scan, fetched from Salesforce by the calling backend, page by page so that
// memory stays flat whatever the row count:
//  * REST: GET .../query?q=<SOQL>, then each nextRecordsUrl (pages of up to 2,000 rows,
//    docs/soql-and-rest.md §1);
//  * Bulk: a Bulk API 2.0 query job (the SOQL travels in the POST body, so no URI limit), polled until it
//    completes, then its result pages of at most kBulkPageRows rows each (docs/bulk-api-2.md §9).
// Both give each value as text for the column's input function, NULL as nullopt: a Bulk CSV's empty field
// and REST's JSON null are both NULL.
//
// Every call goes through call_org (the caller's mapping, token reuse and refresh on 401), transient
// failures are retried by the core retry policy, and a cancel request (Ctrl-C, statement_timeout) stops the
// transfer at once. A Bulk job that has not completed when the scan goes away (cancel, error, a LIMIT met
// early) is aborted in Salesforce.
#pragma once

#include "core/rest_query.h"

#include "backend_call.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sfb::pg {

inline constexpr std::int64_t kBulkPageRows = 50000;

struct FetchStats {
    int pages = 0;
    int api_calls = 0;
    std::int64_t rows = 0;
};

class SalesforceFetch {
  public:
    using Row = std::vector<std::optional<std::string>>;

    SalesforceFetch(OrgCall org, std::string soql, std::vector<SoqlPath> paths, bool bulk);
    ~SalesforceFetch();
    SalesforceFetch(const SalesforceFetch &) = delete;
    SalesforceFetch &operator=(const SalesforceFetch &) = delete;

    // The next row, or nullptr after the last. Valid until the next call. Throws PgError.
    const Row *next();
    // Starts again from the first row (a rescan): a new query, with this statement and engine.
    void restart(std::string soql, bool bulk);

    const FetchStats &stats() const { return stats_; }
    bool bulk() const { return bulk_; }

  private:
    HttpResponse send(HttpRequest request, const char *what);
    void rest_page();
    void bulk_create();
    void bulk_wait();
    void bulk_page();
    void abort_bulk_job() noexcept;

    OrgCall org_;
    std::string soql_;
    std::vector<SoqlPath> paths_;
    bool bulk_;
    FetchStats stats_;

    std::vector<Row> rows_;
    std::size_t next_row_ = 0;
    bool started_ = false;
    bool last_page_ = false;
    std::string next_url_;       // REST: nextRecordsUrl
    std::string job_id_;         // Bulk: the query job
    bool job_complete_ = false;  // Bulk: JobComplete seen (nothing to abort)
    std::optional<std::string> locator_;
};

}  // namespace sfb::pg
