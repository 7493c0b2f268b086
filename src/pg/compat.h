// Differences between the PostgreSQL major versions sf_bulk builds against, in one place.
#pragma once

#include "pg_headers.h"

extern "C" {
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/pathnode.h"
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

// PostgreSQL 17 gave create_foreignscan_path the restriction clauses the path enforces (fdw_restrictinfo,
// for paths of upper and join relations; base relations pass NIL).
#if PG_VERSION_NUM >= 170000
#define sfb_create_foreignscan_path(root, rel, target, rows, startup, total, pathkeys, required_outer, \
                                    outerpath, fdw_private)                                            \
    create_foreignscan_path((root), (rel), (target), (rows), (startup), (total), (pathkeys),           \
                            (required_outer), (outerpath), NIL, (fdw_private))
#else
#define sfb_create_foreignscan_path(root, rel, target, rows, startup, total, pathkeys, required_outer, \
                                    outerpath, fdw_private)                                            \
    create_foreignscan_path((root), (rel), (target), (rows), (startup), (total), (pathkeys),           \
                            (required_outer), (outerpath), (fdw_private))
#endif

// PostgreSQL 16 typed the walker of expression_tree_walker; 15 declares it bool (*)(), which C++ reads as
// taking no arguments.
#if PG_VERSION_NUM >= 160000
#define sfb_expression_tree_walker(node, walker, context) expression_tree_walker((node), (walker), (context))
#else
#define sfb_expression_tree_walker(node, walker, context)                                              \
    expression_tree_walker((node), reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(walker)), \
                           (context))
#endif
