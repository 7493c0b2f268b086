// Statements that need a database without connections (DROP DATABASE, ALTER DATABASE … RENAME, CREATE
// DATABASE … TEMPLATE) would fail while our worker is connected to it. Before they run, the worker of
// that database is asked to leave; the launcher's periodic sweep brings it back if the statement fails.
// DROP EXTENSION sf_bulk takes the jobs' tables with it: their spool files go when it commits.
#include "pg_headers.h"

extern "C" {
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
}

#include "guard.h"
#include "shmem.h"
#include "spool.h"
#include "utility_hook.h"

namespace sfb::pg {

namespace {

ProcessUtility_hook_type previous_hook = nullptr;

void stop_worker_of(const char *database_name) {
    Oid database = get_database_oid(database_name, true);
    if (OidIsValid(database))
        stop_database_worker(database, 5000);
}

// No C++ object lives in this frame: the statement below may raise an ERROR straight through it.
void utility_hook(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
                  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
                  DestReceiver *dest, QueryCompletion *qc) {
    Node *statement = pstmt->utilityStmt;
    if (IsA(statement, DropdbStmt)) {
        stop_worker_of(castNode(DropdbStmt, statement)->dbname);
    } else if (IsA(statement, RenameStmt) && castNode(RenameStmt, statement)->renameType == OBJECT_DATABASE) {
        stop_worker_of(castNode(RenameStmt, statement)->subname);
    } else if (IsA(statement, CreatedbStmt)) {
        ListCell *cell;
        foreach (cell, castNode(CreatedbStmt, statement)->options) {
            DefElem *option = lfirst_node(DefElem, cell);
            if (strcmp(option->defname, "template") == 0 && option->arg != nullptr)
                stop_worker_of(defGetString(option));
        }
    } else if (IsA(statement, DropStmt) && castNode(DropStmt, statement)->removeType == OBJECT_EXTENSION) {
        ListCell *cell;
        foreach (cell, castNode(DropStmt, statement)->objects)
            if (strcmp(strVal(lfirst(cell)), "sf_bulk") == 0)
                // A hook is an entry point: nothing C++ may escape into ProcessUtility.
                guarded_void_call([](void *) { remove_spool_files_at_commit(); }, nullptr);
    }
    if (previous_hook != nullptr)
        previous_hook(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
}

}  // namespace

void install_utility_hook() {
    previous_hook = ProcessUtility_hook;
    ProcessUtility_hook = utility_hook;
}

}  // namespace sfb::pg
