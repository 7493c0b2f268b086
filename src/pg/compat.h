// Differences between the PostgreSQL major versions sf_bulk builds against, in one place.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/regproc.h"
}

// PostgreSQL 17 ties a WaitEventSet to a resource owner (none: freed by us); 15 and 16 to a memory context.
#if PG_VERSION_NUM >= 170000
#define sfb_create_wait_event_set(nevents) CreateWaitEventSet(nullptr, (nevents))
#else
#define sfb_create_wait_event_set(nevents) CreateWaitEventSet(CurrentMemoryContext, (nevents))
#endif

// PostgreSQL 16 replaced the per-kind ACL checks (pg_foreign_server_aclcheck, …) by object_aclcheck.
#if PG_VERSION_NUM >= 160000
#define sfb_foreign_server_aclcheck(srvid, roleid, mode) \
    object_aclcheck(ForeignServerRelationId, (srvid), (roleid), (mode))
#else
#define sfb_foreign_server_aclcheck(srvid, roleid, mode) pg_foreign_server_aclcheck((srvid), (roleid), (mode))
#endif
#if PG_VERSION_NUM >= 160000
#define sfb_namespace_aclcheck(nspid, roleid, mode) \
    object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define sfb_namespace_aclcheck(nspid, roleid, mode) pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

// PostgreSQL 16 added onlySummarizing to ExecInsertIndexTuples (false: every index gets the tuple).
#if PG_VERSION_NUM >= 160000
#define sfb_exec_insert_index_tuples(rri, slot, estate, update, no_dup_err, spec_conflict, arbiter_indexes) \
    ExecInsertIndexTuples((rri), (slot), (estate), (update), (no_dup_err), (spec_conflict),                 \
                          (arbiter_indexes), false)
#else
#define sfb_exec_insert_index_tuples(rri, slot, estate, update, no_dup_err, spec_conflict, arbiter_indexes) \
    ExecInsertIndexTuples((rri), (slot), (estate), (update), (no_dup_err), (spec_conflict), (arbiter_indexes))
#endif

// PostgreSQL 17 dropped PGPROC.pgprocno: this process's number (the index into ProcGlobal->allProcs) is
// MyProcNumber.
#if PG_VERSION_NUM >= 170000
#define sfb_my_pgprocno() static_cast<int>(MyProcNumber)
#else
#define sfb_my_pgprocno() (MyProc->pgprocno)
#endif

// PostgreSQL 16 gave stringToQualifiedNameList a soft-error context (nullptr: a malformed name raises ERROR,
// as before).
#if PG_VERSION_NUM >= 160000
#define sfb_string_to_qualified_name_list(string) stringToQualifiedNameList((string), nullptr)
#else
#define sfb_string_to_qualified_name_list(string) stringToQualifiedNameList((string))
#endif
