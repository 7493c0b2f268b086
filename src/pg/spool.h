// Spool files of the current transaction: created by the enqueue functions, removed again if the
// (sub)transaction that made them aborts, handed to the worker (and woken up) when it commits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sfb::pg {

// The directory of our own under the data directory (not pgsql_tmp, which every restart empties).
// Created on first use. Throws on failure.
std::string spool_directory();

// "<dir>/db<database>_job<id>_": every file of a job (its uploads and their result downloads) starts so.
// The one place spool files are named: the cleanup below finds a job's files by this prefix.
std::string job_file_prefix(int64_t job_id);
// The names below that prefix: core/spool_names.h.

// Unlinks every file of the job in the spool directory (it has ended). Never throws.
void remove_job_files(int64_t job_id) noexcept;

// Jobs of this database that have files in the spool directory.
std::vector<int64_t> jobs_with_files();

// DROP EXTENSION sf_bulk: when the current transaction commits, every spool and result file of this
// database goes (the jobs they belonged to are gone). A rolled-back DROP removes nothing.
void remove_spool_files_at_commit();

// Remembers `path` as belonging to the current subtransaction: it is unlinked if that aborts.
void track_spool_file(const std::string &path);

// fsyncs the spool directory, so the file names survive a crash once the transaction commits.
void sync_spool_directory();

}  // namespace sfb::pg
