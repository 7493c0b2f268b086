// Spool files of the current transaction: created by the enqueue functions, removed again if the
// (sub)transaction that made them aborts, handed to the worker (and woken up) when it commits.
#pragma once

#include <string>

namespace sfb::pg {

// The directory of our own under the data directory (not pgsql_tmp, which every restart empties).
// Created on first use. Throws on failure.
std::string spool_directory();

// Remembers `path` as belonging to the current subtransaction: it is unlinked if that aborts.
void track_spool_file(const std::string &path);

// fsyncs the spool directory, so the file names survive a crash once the transaction commits.
void sync_spool_directory();

// Wakes this database's worker when the current transaction commits.
void wake_worker_at_commit();

}  // namespace sfb::pg
