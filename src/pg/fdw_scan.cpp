// The `salesforce` foreign data wrapper's planner and executor callbacks, shaped like postgres_fdw: the
// options and describe of a table are read once per plan (fdw_meta.h), WHERE clauses are split into those
// SOQL evaluates with PostgreSQL's result and the rest (deparse, below), ORDER BY and LIMIT go to Salesforce
// only when the answer cannot change, and the scan streams pages in the calling backend (fdw_fetch.h).
//
// The pushdown rule (docs/soql-and-rest.md §2): a qual is pushed *exactly* when SOQL keeps the same rows
// PostgreSQL would, or as a *superset* when SOQL keeps at least those rows (text comparisons fold case in
// SOQL) and PostgreSQL then rechecks it on every row; anything else is evaluated locally. NOT is never pushed
// over a comparison (SOQL's two-valued logic keeps null rows that SQL's NOT drops), text <> and text ranges
// never (case folding makes them keep fewer rows), `col <> v` becomes `(F != v AND F != null)`.
//
// This file is PostgreSQL-style code on palloc'd data: it may raise ERROR anywhere, and calls C++ only
// through guarded entry points (sf_table_for, the fetch and literal functions below), never holding a C++
// object across a PostgreSQL call that may fail.
#include "core/rest_query.h"
#include "core/sf_values.h"
#include "core/soql_literal.h"

#include "pg_headers.h"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/sampling.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "compat.h"
#include "fdw_fetch.h"
#include "fdw_meta.h"
#include "guard.h"
#include "settings.h"

#include <string>
#include <vector>

namespace sfb::pg {

namespace {

// Salesforce's limits on a statement (docs/soql-and-rest.md §1.6, §2.7): beyond them a pushed WHERE is
// dropped and evaluated locally instead.
constexpr int kMaxSoqlChars = 100000;
constexpr int kMaxRestUrlBytes = 16000;  // URI + headers must stay below 16,384 bytes
constexpr int kMaxInListValues = 500;

enum Exactness { kNotPushed = 0, kSuperset = 1, kExact = 2 };

// ---- plan-time state of one foreign relation ------------------------------------------------------------

struct SfRelPlan {
    SfTable *table;
    List *pushed;        // RestrictInfo clauses sent in the WHERE
    List *pushed_exact;  // IntList, parallel to pushed: 1 when no local recheck is needed
    List *local;         // RestrictInfo clauses PostgreSQL evaluates (rechecks included)
    Bitmapset *attrs_used;
    bool all_exact;       // every restriction pushed exactly: LIMIT may go to Salesforce
    bool small_result;    // a pushed equality on a unique field (Id, an external id)
    bool where_too_long;  // the WHERE would exceed Salesforce's statement limit: evaluated here
    double rows;
};

struct ClassifyContext {
    SfTable *table;
    Index relid;
    bool runtime;  // a value known only at execution (a parameter, now())
};

// The column a node reads (through binary-compatible casts), when Salesforce can filter on its field; for
// ORDER BY (`for_sort`), when it can sort on it.
const SfColumn *column_of(Node *node, const ClassifyContext *cx, bool for_sort = false) {
    while (node != nullptr && IsA(node, RelabelType))
        node = (Node *)((RelabelType *)node)->arg;
    if (node == nullptr || !IsA(node, Var))
        return nullptr;
    Var *var = (Var *)node;
    if ((Index)var->varno != cx->relid || var->varlevelsup != 0 || var->varattno <= 0 ||
        var->varattno > cx->table->natts)
        return nullptr;
    const SfColumn *c = &cx->table->columns[var->varattno - 1];
    if (c->field == nullptr || c->kind == kSfUnsupported || !(for_sort ? c->sortable : c->filterable))
        return nullptr;
    return c;
}

Node *strip_relabel(Node *node) {
    while (node != nullptr && IsA(node, RelabelType))
        node = (Node *)((RelabelType *)node)->arg;
    return node;
}

// A value the scan can compute before it asks Salesforce: a constant, a parameter, a stable expression
// without columns (now() - interval '1 day').
bool is_scan_value(Node *node, ClassifyContext *cx) {
    node = strip_relabel(node);
    if (node == nullptr)
        return false;
    if (IsA(node, Const))
        return true;
    if (contain_var_clause(node) || contain_volatile_functions(node) || contain_subplans(node) ||
        contain_agg_clause(node) || contain_window_function(node) || expression_returns_set(node))
        return false;
    cx->runtime = true;
    return true;
}

bool value_type_fits(int kind, Oid type) {
    switch (kind) {
        case kSfText:
        case kSfId:
            return type == TEXTOID || type == VARCHAROID || type == UNKNOWNOID;
        case kSfNumber:
            return type == INT2OID || type == INT4OID || type == INT8OID || type == NUMERICOID;
        case kSfBoolean:
            return type == BOOLOID;
        case kSfDate:
            return type == DATEOID;
        case kSfDateTime:
            return type == TIMESTAMPTZOID;
        default:
            return false;
    }
}

bool builtin(Oid oid) {
    return oid < FirstNormalObjectId;
}

// ---- literals -------------------------------------------------------------------------------------------

// Called with exceptions converted: the core writers throw when a value has no SOQL spelling.
struct LiteralIo {
    const char *in;
    int kind;  // 0 string, 1 like pattern, 2 number
    std::string *out;
    bool ok;
};

void write_core_literal(void *arg) {
    auto *io = static_cast<LiteralIo *>(arg);
    io->ok = false;
    try {
        if (io->kind == 0) {
            *io->out = soql_string_literal(io->in);
            io->ok = true;
        } else if (io->kind == 1) {
            bool exact = false;
            if (std::optional<std::string> like = soql_like_literal(io->in, &exact)) {
                *io->out = *like;
                io->ok = true;
            }
        } else {
            *io->out = soql_number_literal(io->in);
            io->ok = true;
        }
    } catch (const std::exception &) {
        io->ok = false;
    }
}

// The SOQL spelling of a C string as a string literal (kind 0), a LIKE pattern (1) or a number (2) into
// `buf`; false when it has none. The std::string lives inside the guarded call only.
bool append_core_literal(StringInfo buf, const char *in, int kind) {
    struct Io {
        LiteralIo io;
        char *result;
    } box{{in, kind, nullptr, false}, nullptr};
    guarded_void_call(
        [](void *arg) {
            auto *b = static_cast<Io *>(arg);
            std::string out;
            b->io.out = &out;
            write_core_literal(&b->io);
            if (b->io.ok)
                b->result = pg_call([&out] { return pstrdup(out.c_str()); });
        },
        &box);
    if (box.result == nullptr)
        return false;
    appendStringInfoString(buf, box.result);
    return true;
}

// A date or a whole-second UTC datetime through the core writers; false when it has no SOQL spelling.
bool append_civil_literal(StringInfo buf, const CivilDateTime &civil, bool date_only) {
    struct Io {
        CivilDateTime civil;
        bool date_only;
        char *result;
    } io{civil, date_only, nullptr};
    guarded_void_call(
        [](void *arg) {
            auto *b = static_cast<Io *>(arg);
            std::string out;
            try {
                out = b->date_only ? soql_date_literal(b->civil) : soql_datetime_literal(b->civil);
            } catch (const std::exception &) {
                return;
            }
            b->result = pg_call([&out] { return pstrdup(out.c_str()); });
        },
        &io);
    if (io.result == nullptr)
        return false;
    appendStringInfoString(buf, io.result);
    return true;
}

bool append_date_literal(StringInfo buf, Datum value) {
    DateADT d = DatumGetDateADT(value);
    if (DATE_NOT_FINITE(d))
        return false;
    CivilDateTime civil;
    j2date(d + POSTGRES_EPOCH_JDATE, &civil.year, &civil.month, &civil.day);
    return append_civil_literal(buf, civil, true);
}

// Salesforce keeps datetimes to the second (docs/soql-and-rest.md §1.4): a bound with a fraction is
// rounded the way that keeps the same rows (col >= 10:00:00.5 is col >= 10:00:01), and `fraction` says
// whether it had one.
bool append_datetime_literal(StringInfo buf, TimestampTz ts, bool *fraction) {
    struct pg_tm tm;
    fsec_t fsec = 0;
    // No time zone: the broken-down time is UTC, which is how SOQL literals are written (...Z).
    if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, nullptr, &tm, &fsec, nullptr, nullptr) != 0)
        return false;
    if (fraction != nullptr)
        *fraction = fsec != 0;
    CivilDateTime civil;
    civil.year = tm.tm_year;
    civil.month = tm.tm_mon;
    civil.day = tm.tm_mday;
    civil.hour = tm.tm_hour;
    civil.minute = tm.tm_min;
    civil.second = tm.tm_sec;
    return append_civil_literal(buf, civil, false);
}

TimestampTz whole_second(TimestampTz ts, bool up) {
    TimestampTz floor = ts - ((ts % USECS_PER_SEC) + USECS_PER_SEC) % USECS_PER_SEC;
    return up && floor != ts ? floor + USECS_PER_SEC : floor;
}

// A value of `type` as the literal a field of `kind` compares with. Empty strings: Salesforce stores none
// (they are null), the caller treats them before.
bool append_literal(StringInfo buf, int kind, Datum value, Oid type) {
    switch (kind) {
        case kSfText:
        case kSfId:
            return append_core_literal(buf, TextDatumGetCString(value), 0);
        case kSfNumber: {
            char *text;
            if (type == INT2OID)
                text = psprintf("%d", (int)DatumGetInt16(value));
            else if (type == INT4OID)
                text = psprintf("%d", DatumGetInt32(value));
            else if (type == INT8OID)
                text = psprintf(INT64_FORMAT, DatumGetInt64(value));
            else
                text = DatumGetCString(DirectFunctionCall1(numeric_out, value));
            return append_core_literal(buf, text, 2);
        }
        case kSfBoolean:
            appendStringInfoString(buf, DatumGetBool(value) ? "TRUE" : "FALSE");
            return true;
        case kSfDate:
            return append_date_literal(buf, value);
        case kSfDateTime: {
            bool fraction = false;
            return append_datetime_literal(buf, DatumGetTimestampTz(value), &fraction) && !fraction;
        }
        default:
            return false;
    }
}

bool is_empty_text(int kind, Datum value) {
    if (kind != kSfText && kind != kSfId)
        return false;
    return VARSIZE_ANY_EXHDR(DatumGetPointer(value)) == 0;
}

// ---- the qual walker, shared by the plan-time check and the execution-time deparse ----------------------

// Execution: the values of the scan's runtime expressions, found by equal() in `runtime`.
struct DeparseContext {
    ClassifyContext cx;
    List *runtime;  // the expressions (from fdw_exprs)
    Datum *values;
    bool *nulls;
    bool explain_only;  // EXPLAIN without ANALYZE: runtime values are shown, not computed
};

// Resolves a value node: a Const, or a runtime expression's computed value. At plan time (dx == nullptr)
// only constants have values: *known is false for the others.
bool value_of(Node *node, DeparseContext *dx, Datum *value, bool *isnull, Oid *type, bool *known) {
    node = strip_relabel(node);
    *type = exprType(node);
    *known = true;
    if (IsA(node, Const)) {
        *value = ((Const *)node)->constvalue;
        *isnull = ((Const *)node)->constisnull;
        return true;
    }
    if (dx == nullptr || dx->explain_only) {
        *known = false;
        return true;
    }
    int i = 0;
    ListCell *lc;
    foreach (lc, dx->runtime) {
        if (equal(strip_relabel((Node *)lfirst(lc)), node)) {
            *value = dx->values[i];
            *isnull = dx->nulls[i];
            return true;
        }
        ++i;
    }
    return false;
}

// SOQL has no FALSE: Id is never null, so this matches no row (docs/soql-and-rest.md §1.5).
const char *kNoRows = "Id = null";
// Nor TRUE: every row has an Id.
const char *kAllRows = "Id != null";

const char *soql_operator(const char *opname, bool *negated) {
    *negated = false;
    if (strcmp(opname, "=") == 0)
        return "=";
    if (strcmp(opname, "<>") == 0) {
        *negated = true;
        return "!=";
    }
    if (strcmp(opname, "<") == 0 || strcmp(opname, "<=") == 0 || strcmp(opname, ">") == 0 ||
        strcmp(opname, ">=") == 0)
        return opname;
    return nullptr;
}

const char *commuted(const char *op) {
    if (strcmp(op, "<") == 0)
        return ">";
    if (strcmp(op, "<=") == 0)
        return ">=";
    if (strcmp(op, ">") == 0)
        return "<";
    if (strcmp(op, ">=") == 0)
        return "<=";
    return op;
}

int walk(Node *node, ClassifyContext *cx, DeparseContext *dx, StringInfo buf);

// col OP value, value OP col, col LIKE/ILIKE pattern.
int walk_operator(OpExpr *op, ClassifyContext *cx, DeparseContext *dx, StringInfo buf) {
    if (list_length(op->args) != 2 || !builtin(op->opno))
        return kNotPushed;
    Node *left = (Node *)linitial(op->args);
    Node *right = (Node *)lsecond(op->args);
    char *opname = get_opname(op->opno);
    if (opname == nullptr)
        return kNotPushed;
    const SfColumn *col = column_of(left, cx);
    Node *value_node = right;
    bool swapped = false;
    if (col == nullptr) {
        col = column_of(right, cx);
        value_node = left;
        swapped = true;
    }
    if (col == nullptr || !is_scan_value(value_node, cx))
        return kNotPushed;
    Datum value = 0;
    bool isnull = false, known = false;
    Oid type;
    if (!value_of(value_node, dx, &value, &isnull, &type, &known) || !value_type_fits(col->kind, type))
        return kNotPushed;
    bool textual = col->kind == kSfText || col->kind == kSfId;
    bool like = strcmp(opname, "~~") == 0 || strcmp(opname, "~~*") == 0;
    if (like) {
        if (!textual || swapped)
            return kNotPushed;
        // On a caseSensitive field SOQL's LIKE keeps case (docs/soql-and-rest.md §2.1): ILIKE would lose
        // rows.
        if (strcmp(opname, "~~*") == 0 && col->case_sensitive)
            return kNotPushed;
    }
    bool negated = false;
    const char *soql_op = like ? "LIKE" : soql_operator(opname, &negated);
    if (soql_op == nullptr)
        return kNotPushed;
    // Case folding: SOQL's = keeps at least PostgreSQL's rows (a recheck drops the rest); its <>, < and >
    // on text would keep fewer, so they stay local.
    if (textual && !like && strcmp(soql_op, "=") != 0)
        return kNotPushed;
    if (col->kind == kSfBoolean && strcmp(soql_op, "=") != 0 && !negated)
        return kNotPushed;
    if (swapped)
        soql_op = commuted(soql_op);
    int result = textual ? kSuperset : kExact;
    if (buf == nullptr) {
        // Plan time: a constant must have a spelling now (a runtime value is checked at execution).
        if (known && !isnull && !is_empty_text(col->kind, value)) {
            StringInfoData probe;
            initStringInfo(&probe);
            bool ok = like ? append_core_literal(&probe, TextDatumGetCString(value), 1)
                      : col->kind == kSfDateTime
                          ? append_datetime_literal(&probe, whole_second(DatumGetTimestampTz(value), false),
                                                    nullptr)
                          : append_literal(&probe, col->kind, value, type);
            pfree(probe.data);
            if (!ok)
                return kNotPushed;
        }
        return result;
    }
    if (!known) {  // EXPLAIN only: the value is computed when the scan runs
        appendStringInfo(buf, "%s %s ?", col->field, soql_op);
        return result;
    }
    // NULL compares to nothing, and Salesforce stores no empty strings: either matches no row.
    if (isnull || is_empty_text(col->kind, value)) {
        appendStringInfoString(buf, kNoRows);
        return result;
    }
    if (col->kind == kSfBoolean) {
        // A checkbox is never null: col <> true is col = false.
        bool v = DatumGetBool(value) != negated;
        appendStringInfo(buf, "%s = %s", col->field, v ? "TRUE" : "FALSE");
        return result;
    }
    if (col->kind == kSfDateTime) {
        TimestampTz ts = DatumGetTimestampTz(value);
        if (ts != whole_second(ts, false)) {
            // No stored datetime has a fraction: = matches none, <> every non-null one, ranges round.
            if (strcmp(soql_op, "=") == 0) {
                appendStringInfoString(buf, kNoRows);
                return result;
            }
            if (negated) {
                appendStringInfo(buf, "%s != null", col->field);
                return result;
            }
            bool upward = soql_op[0] == '>';
            appendStringInfo(buf, "%s %s ", col->field, upward ? ">=" : "<=");
            if (!append_datetime_literal(buf, whole_second(ts, upward), nullptr))
                return kNotPushed;
            return result;
        }
    }
    if (negated)
        appendStringInfoChar(buf, '(');
    appendStringInfo(buf, "%s %s ", col->field, soql_op);
    bool ok = like ? append_core_literal(buf, TextDatumGetCString(value), 1)
                   : append_literal(buf, col->kind, value, type);
    if (!ok)
        return kNotPushed;
    // SQL's <> is never true for a null column; SOQL's != is.
    if (negated)
        appendStringInfo(buf, " AND %s != null)", col->field);
    return result;
}

// col = ANY(values) -> IN; col <> ALL(values) -> NOT IN (numbers, dates).
int walk_array(ScalarArrayOpExpr *sa, ClassifyContext *cx, DeparseContext *dx, StringInfo buf) {
    if (list_length(sa->args) != 2 || !builtin(sa->opno))
        return kNotPushed;
    const SfColumn *col = column_of((Node *)linitial(sa->args), cx);
    Node *array_node = (Node *)lsecond(sa->args);
    if (col == nullptr || !is_scan_value(array_node, cx))
        return kNotPushed;
    char *opname = get_opname(sa->opno);
    if (opname == nullptr)
        return kNotPushed;
    bool in = sa->useOr && strcmp(opname, "=") == 0;
    bool not_in = !sa->useOr && strcmp(opname, "<>") == 0;
    bool textual = col->kind == kSfText || col->kind == kSfId;
    if (!in && !(not_in && !textual && col->kind != kSfBoolean))
        return kNotPushed;
    if (col->kind == kSfBoolean)
        return kNotPushed;
    Datum value = 0;
    bool isnull = false, known = false;
    Oid type;
    if (!value_of(array_node, dx, &value, &isnull, &type, &known))
        return kNotPushed;
    Oid element = get_element_type(type);
    if (!OidIsValid(element) || !value_type_fits(col->kind, element))
        return kNotPushed;
    int result = textual ? kSuperset : kExact;
    if (!known) {
        if (buf != nullptr)
            appendStringInfo(buf, "%s %s (?)", col->field, in ? "IN" : "NOT IN");
        return result;
    }
    if (isnull) {
        if (buf != nullptr)
            appendStringInfoString(buf, kNoRows);
        return result;
    }
    ArrayType *array = DatumGetArrayTypeP(value);
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(element, &typlen, &typbyval, &typalign);
    Datum *elems;
    bool *elem_nulls;
    int n;
    deconstruct_array(array, element, typlen, typbyval, typalign, &elems, &elem_nulls, &n);
    if (n > kMaxInListValues)
        return kNotPushed;
    bool any_null = false;
    StringInfoData list;
    initStringInfo(&list);
    int written = 0;
    for (int i = 0; i < n; ++i) {
        if (elem_nulls[i]) {
            any_null = true;
            continue;
        }
        if (is_empty_text(col->kind, elems[i]))
            continue;  // matches no stored value
        if (col->kind == kSfDateTime &&
            DatumGetTimestampTz(elems[i]) != whole_second(DatumGetTimestampTz(elems[i]), false))
            continue;  // neither: no stored datetime has a fraction
        if (written > 0)
            appendStringInfoString(&list, ", ");
        if (!append_literal(&list, col->kind, elems[i], element))
            return kNotPushed;
        ++written;
    }
    if (buf == nullptr)
        return result;
    // x <> ALL('{1,NULL}') is never true; x = ANY('{}') neither; and SOQL refuses an empty IN list.
    if ((not_in && any_null) || (in && written == 0)) {
        appendStringInfoString(buf, kNoRows);
        return result;
    }
    // x <> ALL('{}') is true for every row, null ones included; with values that match no stored one (a
    // fractional datetime), it is true for every non-null x.
    if (not_in && n == 0) {
        appendStringInfoString(buf, kAllRows);
        return result;
    }
    if (not_in && written == 0) {
        appendStringInfo(buf, "%s != null", col->field);
        return result;
    }
    if (in)
        appendStringInfo(buf, "%s IN (%s)", col->field, list.data);
    else
        appendStringInfo(buf, "(%s NOT IN (%s) AND %s != null)", col->field, list.data, col->field);
    return result;
}

int walk_bool(BoolExpr *b, ClassifyContext *cx, DeparseContext *dx, StringInfo buf) {
    if (b->boolop == NOT_EXPR) {
        // Only NOT of a checkbox column: NOT over a comparison differs for null rows.
        const SfColumn *col = column_of((Node *)linitial(b->args), cx);
        if (col == nullptr || col->kind != kSfBoolean)
            return kNotPushed;
        if (buf != nullptr)
            appendStringInfo(buf, "%s = FALSE", col->field);
        return kExact;
    }
    const char *glue = b->boolop == AND_EXPR ? " AND " : " OR ";
    int result = kExact;
    bool first = true;
    if (buf != nullptr)
        appendStringInfoChar(buf, '(');
    ListCell *lc;
    foreach (lc, b->args) {
        if (buf != nullptr && !first)
            appendStringInfoString(buf, glue);
        first = false;
        int r = walk((Node *)lfirst(lc), cx, dx, buf);
        if (r == kNotPushed)
            return kNotPushed;
        result = Min(result, r);
    }
    if (buf != nullptr)
        appendStringInfoChar(buf, ')');
    return result;
}

// Walks one qual: its exactness, and with `buf` its SOQL (kNotPushed: no SOQL could be written).
int walk(Node *node, ClassifyContext *cx, DeparseContext *dx, StringInfo buf) {
    if (node == nullptr)
        return kNotPushed;
    check_stack_depth();
    switch (nodeTag(node)) {
        case T_OpExpr:
            return walk_operator((OpExpr *)node, cx, dx, buf);
        case T_ScalarArrayOpExpr:
            return walk_array((ScalarArrayOpExpr *)node, cx, dx, buf);
        case T_BoolExpr:
            return walk_bool((BoolExpr *)node, cx, dx, buf);
        case T_NullTest: {
            NullTest *nt = (NullTest *)node;
            const SfColumn *col = column_of((Node *)nt->arg, cx);
            // A checkbox's = null means = false in SOQL; a PostgreSQL boolean from Salesforce is never null.
            if (col == nullptr || nt->argisrow || col->kind == kSfBoolean)
                return kNotPushed;
            if (buf != nullptr)
                appendStringInfo(buf, "%s %s null", col->field, nt->nulltesttype == IS_NULL ? "=" : "!=");
            return kExact;
        }
        case T_Var:
        case T_RelabelType: {
            const SfColumn *col = column_of(node, cx);
            if (col == nullptr || col->kind != kSfBoolean)
                return kNotPushed;
            if (buf != nullptr)
                appendStringInfo(buf, "%s = TRUE", col->field);
            return kExact;
        }
        default:
            return kNotPushed;
    }
}

// ---- planner callbacks ----------------------------------------------------------------------------------

void get_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid) {
    SfRelPlan *plan = (SfRelPlan *)palloc0(sizeof(SfRelPlan));
    baserel->fdw_private = plan;
    plan->table = sf_table_for(foreigntableid, true);
    plan->all_exact = true;
    ClassifyContext cx{plan->table, baserel->relid, false};
    ListCell *lc;
    foreach (lc, baserel->baserestrictinfo) {
        RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
        cx.runtime = false;
        int r = walk((Node *)ri->clause, &cx, nullptr, nullptr);
        if (r == kNotPushed) {
            plan->local = lappend(plan->local, ri);
            plan->all_exact = false;
            continue;
        }
        // A runtime value may turn out to have no SOQL spelling: such quals are rechecked too.
        bool exact = r == kExact && !cx.runtime;
        plan->pushed = lappend(plan->pushed, ri);
        plan->pushed_exact = lappend_int(plan->pushed_exact, exact ? 1 : 0);
        if (!exact) {
            plan->local = lappend(plan->local, ri);
            plan->all_exact = false;
        }
        // Equality on a unique field: one row at most, the REST engine's case.
        Node *clause = (Node *)ri->clause;
        if (IsA(clause, OpExpr) || IsA(clause, ScalarArrayOpExpr)) {
            List *args = IsA(clause, OpExpr) ? ((OpExpr *)clause)->args : ((ScalarArrayOpExpr *)clause)->args;
            Oid opno = IsA(clause, OpExpr) ? ((OpExpr *)clause)->opno : ((ScalarArrayOpExpr *)clause)->opno;
            char *opname = get_opname(opno);
            for (int side = 0; side < 2 && opname != nullptr && strcmp(opname, "=") == 0; ++side) {
                const SfColumn *col = column_of((Node *)list_nth(args, side), &cx);
                if (col != nullptr && col->unique_key)
                    plan->small_result = true;
            }
        }
    }
    // A WHERE longer than Salesforce takes stays with PostgreSQL entirely (runtime values shown as "?" count
    // little: a statement they make too long drops them at execution, and PostgreSQL rechecks them).
    if (plan->pushed != NIL) {
        StringInfoData where;
        initStringInfo(&where);
        ClassifyContext lx{plan->table, baserel->relid, false};
        foreach (lc, plan->pushed)
            (void)walk((Node *)lfirst_node(RestrictInfo, lc)->clause, &lx, nullptr, &where);
        int select_chars = 0;
        for (int i = 0; i < plan->table->natts; ++i)
            if (plan->table->columns[i].field != nullptr)
                select_chars += (int)strlen(plan->table->columns[i].field) + 2;
        if (where.len + select_chars + 200 > kMaxSoqlChars) {
            foreach (lc, plan->pushed)
                if (!list_member_ptr(plan->local, lfirst(lc)))
                    plan->local = lappend(plan->local, lfirst(lc));
            plan->pushed = NIL;
            plan->pushed_exact = NIL;
            plan->all_exact = false;
            plan->small_result = false;
            plan->where_too_long = true;
        }
    }
    // Columns the scan must return: those the query reads and those the local quals need.
    pull_varattnos((Node *)baserel->reltarget->exprs, baserel->relid, &plan->attrs_used);
    foreach (lc, plan->local) {
        RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
        pull_varattnos((Node *)ri->clause, baserel->relid, &plan->attrs_used);
    }
    // Rows of the object: Salesforce's record count, else what ANALYZE found, else a guess.
    double tuples = plan->table->row_count >= 0 ? plan->table->row_count
                    : baserel->tuples > 0       ? baserel->tuples
                                                : 1000.0;
    baserel->tuples = tuples;
    Selectivity sel = clauselist_selectivity(root, baserel->baserestrictinfo, 0, JOIN_INNER, nullptr);
    baserel->rows = clamp_row_est(tuples * sel);
    if (plan->small_result)
        baserel->rows = Min(baserel->rows, 1.0 * Max(1, list_length(plan->pushed)));
    plan->rows = baserel->rows;
}

// The ORDER BY SOQL for the query's pathkeys, or nullptr when Salesforce cannot sort the same way: only
// plain columns of sortable number, date and datetime fields under their default ordering (text sorts fold
// case in SOQL; booleans and nulls are spelled out).
char *order_by_for(PlannerInfo *root, RelOptInfo *baserel, SfRelPlan *plan, List **pathkeys) {
    if (root->query_pathkeys == NIL)
        return nullptr;
    ClassifyContext cx{plan->table, baserel->relid, false};
    StringInfoData buf;
    initStringInfo(&buf);
    ListCell *lc;
    foreach (lc, root->query_pathkeys) {
        PathKey *pk = (PathKey *)lfirst(lc);
        EquivalenceClass *ec = pk->pk_eclass;
        if (ec->ec_has_volatile)
            return nullptr;
        const SfColumn *col = nullptr;
        Oid type = InvalidOid;
        ListCell *mc;
        foreach (mc, ec->ec_members) {
            EquivalenceMember *em = (EquivalenceMember *)lfirst(mc);
            if (bms_equal(em->em_relids, baserel->relids) &&
                (col = column_of((Node *)em->em_expr, &cx, true)) != nullptr) {
                type = exprType((Node *)em->em_expr);
                break;
            }
        }
        if (col == nullptr || !(col->kind == kSfNumber || col->kind == kSfDate || col->kind == kSfDateTime))
            return nullptr;
        // Only the type's default btree ordering is SOQL's.
        Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);
        if (!OidIsValid(opclass) || get_opclass_family(opclass) != pk->pk_opfamily)
            return nullptr;
        bool desc = pk->pk_strategy == BTGreaterStrategyNumber;
        appendStringInfo(&buf, "%s%s %s NULLS %s", buf.len > 0 ? ", " : "", col->field, desc ? "DESC" : "ASC",
                         pk->pk_nulls_first ? "FIRST" : "LAST");
    }
    *pathkeys = root->query_pathkeys;
    return buf.data;
}

// LIMIT n (n = count + offset) for Salesforce, or -1: only for a query on this table alone, without
// grouping, aggregates, DISTINCT, windows or set-returning functions, whose restrictions all went to
// Salesforce exactly, and a constant LIMIT.
int64 limit_for(PlannerInfo *root, RelOptInfo *baserel, SfRelPlan *plan) {
    Query *parse = root->parse;
    if (!plan->all_exact || parse->limitCount == nullptr || baserel->reloptkind != RELOPT_BASEREL ||
        bms_membership(root->all_baserels) != BMS_SINGLETON || parse->groupClause != NIL ||
        parse->groupingSets != NIL || parse->hasAggs || parse->hasWindowFuncs ||
        parse->distinctClause != NIL || parse->hasTargetSRFs || parse->setOperations != nullptr ||
        parse->havingQual != nullptr || parse->rowMarks != NIL || parse->limitOption != LIMIT_OPTION_COUNT)
        return -1;
    Node *count = strip_relabel(parse->limitCount);
    if (!IsA(count, Const) || ((Const *)count)->constisnull)
        return -1;
    int64 n = DatumGetInt64(((Const *)count)->constvalue);
    if (parse->limitOffset != nullptr) {
        Node *offset = strip_relabel(parse->limitOffset);
        if (!IsA(offset, Const))
            return -1;
        if (!((Const *)offset)->constisnull)
            n += DatumGetInt64(((Const *)offset)->constvalue);
    }
    // SOQL takes a positive LIMIT only (and PostgreSQL does not run the scan under LIMIT 0 anyway).
    return n > 0 && n < 1000000000 ? n : -1;
}

// REST unless the result is large (docs/soql-and-rest.md §2.9): forced by sf_bulk.scan_engine or the
// table's/server's `engine`; automatically REST for a LIMIT, an equality on a unique field, or fewer rows
// than sf_bulk.rest_max_rows.
int choose_engine(SfRelPlan *plan, int64 limit) {
    if (settings.scan_engine != 0)
        return settings.scan_engine;
    if (plan->table->engine != 0)
        return plan->table->engine;
    if (plan->small_result || (limit >= 0 && limit <= settings.rest_max_rows) ||
        plan->rows <= settings.rest_max_rows)
        return 1;
    return 2;
}

struct PathChoice {
    int engine;
    char *order_by;  // nullptr: none
    int64 limit;
};

void add_scan_path(PlannerInfo *root, RelOptInfo *baserel, SfRelPlan *plan, List *pathkeys,
                   PathChoice choice) {
    // A Bulk job costs a create, polls and a page per 50,000 rows; REST one call per 2,000 rows.
    double rows = choice.limit >= 0 ? Min(plan->rows, (double)choice.limit) : plan->rows;
    Cost startup = choice.engine == 2 ? 5000.0 : 100.0;
    Cost per_row = choice.engine == 2 ? 0.02 : 0.05;
    Cost total = startup + rows * per_row + baserel->baserestrictcost.per_tuple * rows;
    if (pathkeys != NIL)
        total +=
            1.0;  // sorting is Salesforce's, nearly free here; the unsorted path stays preferred otherwise
    List *priv =
        list_make3(makeInteger(choice.engine), makeString(choice.order_by ? choice.order_by : pstrdup("")),
                   makeString(psprintf(INT64_FORMAT, choice.limit)));
    add_path(baserel, (Path *)sfb_create_foreignscan_path(root, baserel, nullptr, rows, startup, total,
                                                          pathkeys, nullptr, nullptr, priv));
}

void get_paths(PlannerInfo *root, RelOptInfo *baserel, Oid) {
    SfRelPlan *plan = (SfRelPlan *)baserel->fdw_private;
    List *pathkeys = NIL;
    char *order_by = order_by_for(root, baserel, plan, &pathkeys);
    int64 limit = limit_for(root, baserel, plan);
    bool sorted_query = root->query_pathkeys != NIL;
    // Without ORDER BY any n rows will do; with one, only the sorted path may stop at n.
    int engine = choose_engine(plan, sorted_query ? (order_by ? limit : -1) : limit);
    bool bulk = engine == 2;
    add_scan_path(root, baserel, plan, NIL, PathChoice{engine, nullptr, sorted_query || bulk ? -1 : limit});
    // A Bulk query job neither sorts nor stops early cheaply (docs/soql-and-rest.md §2.9): those stay local.
    if (order_by != nullptr && !bulk)
        add_scan_path(root, baserel, plan, pathkeys, PathChoice{engine, order_by, limit});
}

// fdw_private of the plan: [engine, order_by, limit, object, fields (String list, SELECT order),
// column_select (IntList: SELECT position of each column or -1), pushed_exact (IntList), nruntime].
// fdw_exprs: the runtime values, then the pushed quals (both adjusted by setrefs like any plan expression).
enum PrivateIndex {
    kPrivEngine,
    kPrivOrderBy,
    kPrivLimit,
    kPrivObject,
    kPrivFields,
    kPrivColumnSelect,
    kPrivPushedExact,
    kPrivRuntimeCount,
    kPrivWhereTooLong,
};

bool collect_runtime(Node *node, List **out);

bool collect_runtime_walker(Node *node, void *context) {
    return collect_runtime(node, (List **)context);
}

// Gathers the runtime value expressions of pushed quals (Params, stable expressions), each once.
bool collect_runtime(Node *node, List **out) {
    if (node == nullptr)
        return false;
    if (IsA(node, Var) || IsA(node, Const))
        return false;
    if (!contain_var_clause(node) && !contain_volatile_functions(node)) {
        Node *stripped = strip_relabel(node);
        if (!IsA(stripped, Const) && !list_member(*out, stripped))
            *out = lappend(*out, stripped);
        return false;
    }
    return sfb_expression_tree_walker(node, collect_runtime_walker, out);
}

// The SELECT list: each field once, in column order, for the columns in `wanted` (attribute numbers offset
// by FirstLowInvalidHeapAttributeNumber, as pull_varattnos makes them), or every column when `all`, leaving
// out what a Bulk job cannot return when `bulk`; the Id alone when no column is read (count(*)). Sets
// *column_select to each column's SELECT position, -1 when it is not read.
List *select_list(SfTable *table, Bitmapset *wanted, bool all, bool bulk, List **column_select) {
    List *fields = NIL;
    *column_select = NIL;
    for (int attno = 1; attno <= table->natts; ++attno) {
        const SfColumn *c = &table->columns[attno - 1];
        int position = -1;
        if (c->field != nullptr && !(bulk && !c->bulk_selectable) &&
            (all || bms_is_member(attno - FirstLowInvalidHeapAttributeNumber, wanted))) {
            int i = 0;
            ListCell *lc;
            foreach (lc, fields) {
                if (pg_strcasecmp(strVal(lfirst(lc)), c->field) == 0) {
                    position = i;
                    break;
                }
                ++i;
            }
            if (position < 0) {
                position = list_length(fields);
                fields = lappend(fields, makeString(c->field));
            }
        }
        *column_select = lappend_int(*column_select, position);
    }
    if (fields == NIL)
        fields = list_make1(makeString(pstrdup("Id")));
    return fields;
}

ForeignScan *get_plan(PlannerInfo *, RelOptInfo *baserel, Oid, ForeignPath *best_path, List *tlist,
                      List *scan_clauses, Plan *outer_plan) {
    SfRelPlan *plan = (SfRelPlan *)baserel->fdw_private;
    SfTable *table = plan->table;
    // The quals PostgreSQL evaluates: those not pushed and those pushed as a superset.
    List *local_exprs = NIL;
    ListCell *lc;
    foreach (lc, scan_clauses) {
        RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
        if (ri->pseudoconstant)
            continue;
        if (list_member_ptr(plan->local, ri))
            local_exprs = lappend(local_exprs, ri->clause);
        else if (!list_member_ptr(plan->pushed, ri))
            local_exprs = lappend(local_exprs, ri->clause);  // a clause the planner added after sizing
    }
    List *pushed_exprs = NIL;
    List *runtime = NIL;
    foreach (lc, plan->pushed) {
        RestrictInfo *ri = lfirst_node(RestrictInfo, lc);
        pushed_exprs = lappend(pushed_exprs, ri->clause);
        collect_runtime_walker((Node *)ri->clause, &runtime);
    }
    bool whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, plan->attrs_used);
    List *column_select = NIL;
    List *fields = select_list(table, plan->attrs_used, whole_row, false, &column_select);
    List *path_private = best_path->fdw_private;
    List *priv = NIL;
    priv = lappend(priv, linitial(path_private));  // engine
    priv = lappend(priv, lsecond(path_private));   // order by
    priv = lappend(priv, lthird(path_private));    // limit
    priv = lappend(priv, makeString(table->object));
    priv = lappend(priv, fields);
    priv = lappend(priv, column_select);
    priv = lappend(priv, plan->pushed_exact);
    priv = lappend(priv, makeInteger(list_length(runtime)));
    priv = lappend(priv, makeInteger(plan->where_too_long ? 1 : 0));
    List *fdw_exprs = list_concat(list_copy(runtime), pushed_exprs);
    return make_foreignscan(tlist, local_exprs, baserel->relid, fdw_exprs, priv, NIL, NIL, outer_plan);
}

// ---- executor -------------------------------------------------------------------------------------------

// How a fetched row becomes a tuple: each column's input function, or a split into text[] for a
// multipicklist ("a;b;c").
struct RowConversion {
    const char *table_name;
    SfTable *table;
    int natts;
    char **column_names;
    int *column_select;  // SELECT position of each column, -1 when not fetched
    FmgrInfo *input;
    Oid *ioparam;
    int32 *typmod;
    bool *is_array;
    Oid *array_element;
    int64 row_number;
    int converting;  // the column being converted, for the error context
};

struct SfScanState {
    SalesforceFetch *fetch;  // owned: deleted by the memory context callback below
    MemoryContextCallback cleanup;
    SfTable *table;
    char *soql;  // in soql_context, rebuilt when a rescan brings new parameter values
    MemoryContext soql_context;
    int planned_engine;
    int engine;            // planned_engine, or Bulk for a statement too long for a REST URI
    List *runtime_states;  // ExprStates of the runtime values
    int npushed;
    bool *unsent;  // per pushed qual: left out of this SOQL (PostgreSQL rechecks it)
    bool started;  // the SOQL of the current values was sent
    char *notice;
    bool notice_given;  // once per scan, not once per rescan
    RowConversion conv;
    MemoryContext row_context;
};

void init_conversion(RowConversion *conv, Relation rel, SfTable *table, const int *column_select) {
    TupleDesc desc = RelationGetDescr(rel);
    conv->table_name = RelationGetRelationName(rel);
    conv->table = table;
    conv->natts = desc->natts;
    int n = Max(conv->natts, 1);
    conv->column_select = (int *)palloc(sizeof(int) * n);
    conv->column_names = (char **)palloc0(sizeof(char *) * n);
    conv->converting = -1;
    conv->input = (FmgrInfo *)palloc0(sizeof(FmgrInfo) * n);
    conv->ioparam = (Oid *)palloc0(sizeof(Oid) * n);
    conv->typmod = (int32 *)palloc0(sizeof(int32) * n);
    conv->is_array = (bool *)palloc0(sizeof(bool) * n);
    conv->array_element = (Oid *)palloc0(sizeof(Oid) * n);
    for (int i = 0; i < conv->natts; ++i) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        conv->column_select[i] = column_select[i];
        conv->column_names[i] = pstrdup(NameStr(att->attname));
        if (att->attisdropped || conv->column_select[i] < 0)
            continue;
        Oid element = get_element_type(att->atttypid);
        conv->is_array[i] = OidIsValid(element);
        conv->array_element[i] = element;
        Oid infunc;
        getTypeInputInfo(conv->is_array[i] ? element : att->atttypid, &infunc, &conv->ioparam[i]);
        fmgr_info(infunc, &conv->input[i]);
        conv->typmod[i] = conv->is_array[i] ? -1 : att->atttypmod;
    }
}

void delete_fetch(void *arg) {
    SfScanState *s = (SfScanState *)arg;
    SalesforceFetch *fetch = s->fetch;
    s->fetch = nullptr;
    delete fetch;  // noexcept: aborts an unfinished Bulk job without a PostgreSQL call
}

// Builds the SOQL from the plan and the runtime values. Quals whose values have no spelling are left out
// (each is an AND term, so the result is a superset) and, if they were pushed exactly, evaluated here.
// Builds the SOQL from the plan and the runtime values (evaluated now: at the scan's start, and again when
// a rescan brings new parameter values). Quals whose values have no spelling are left out (each is an AND
// term, so the result is a superset) and, if they were pushed exactly, evaluated here.
void build_soql(ForeignScanState *node, SfScanState *s, bool explain_only) {
    ForeignScan *fs = (ForeignScan *)node->ss.ps.plan;
    List *priv = fs->fdw_private;
    SfTable *table = s->table;
    int nruntime = intVal(list_nth(priv, kPrivRuntimeCount));
    List *pushed = list_copy_tail(fs->fdw_exprs, nruntime);
    List *pushed_exact = (List *)list_nth(priv, kPrivPushedExact);
    MemoryContextReset(s->soql_context);
    MemoryContext caller = MemoryContextSwitchTo(s->soql_context);
    DeparseContext dx;
    dx.cx = ClassifyContext{table, (Index)fs->scan.scanrelid, false};
    dx.runtime = list_copy_head(fs->fdw_exprs, nruntime);
    dx.explain_only = explain_only;
    dx.values = (Datum *)palloc0(sizeof(Datum) * Max(nruntime, 1));
    dx.nulls = (bool *)palloc0(sizeof(bool) * Max(nruntime, 1));
    if (!explain_only) {
        ExprContext *econtext = node->ss.ps.ps_ExprContext;
        int i = 0;
        ListCell *lc;
        foreach (lc, s->runtime_states) {
            dx.values[i] = ExecEvalExpr((ExprState *)lfirst(lc), econtext, &dx.nulls[i]);
            ++i;
        }
    }
    StringInfoData soql;
    initStringInfo(&soql);
    appendStringInfoString(&soql, "SELECT ");
    ListCell *lc;
    bool first = true;
    foreach (lc, (List *)list_nth(priv, kPrivFields)) {
        appendStringInfo(&soql, "%s%s", first ? "" : ", ", strVal(lfirst(lc)));
        first = false;
    }
    appendStringInfo(&soql, " FROM %s", strVal(list_nth(priv, kPrivObject)));
    StringInfoData where;
    initStringInfo(&where);
    // Exact quals hold constants only, checked at plan time: they always have a spelling and fit. A qual with
    // runtime values is rechecked by PostgreSQL, so it may be left out: when a value has no spelling, or
    // when the values make the statement longer than Salesforce takes.
    StringInfoData rechecked;
    initStringInfo(&rechecked);
    int i = 0;
    foreach (lc, pushed) {
        StringInfoData one;
        initStringInfo(&one);
        dx.cx.runtime = false;
        bool exact = list_nth_int(pushed_exact, i) != 0;
        s->unsent[i] = walk((Node *)lfirst(lc), &dx.cx, &dx, &one) == kNotPushed;
        if (s->unsent[i] && exact)
            elog(ERROR, "salesforce foreign table: a condition planned for Salesforce has no SOQL spelling");
        if (!s->unsent[i]) {
            StringInfo into = exact ? &where : &rechecked;
            appendStringInfo(into, "%s%s", into->len > 0 ? " AND " : "", one.data);
        }
        ++i;
    }
    const char *order_by = strVal(list_nth(priv, kPrivOrderBy));
    int64 limit = strtoi64(strVal(list_nth(priv, kPrivLimit)), nullptr, 10);
    if (soql.len + where.len + rechecked.len + strlen(order_by) + 80 > (size_t)kMaxSoqlChars) {
        resetStringInfo(&rechecked);
        s->notice = psprintf(
            "the WHERE clause is longer than Salesforce accepts in a query (%d characters); "
            "conditions with parameters are evaluated locally",
            kMaxSoqlChars);
    }
    if (rechecked.len > 0)
        appendStringInfo(&where, "%s%s", where.len > 0 ? " AND " : "", rechecked.data);
    if (where.len > 0)
        appendStringInfo(&soql, " WHERE %s", where.data);
    if (order_by[0] != '\0')
        appendStringInfo(&soql, " ORDER BY %s", order_by);
    if (limit >= 0)
        appendStringInfo(&soql, " LIMIT " INT64_FORMAT, limit);
    s->soql = soql.data;
    MemoryContextSwitchTo(caller);
    // A REST query travels in the URI: one too long for Salesforce goes to a Bulk job, whose SOQL is in the
    // body (the wide-object case, docs/soql-and-rest.md §1.6).
    s->engine = s->planned_engine;
    if (s->engine == 1) {
        // Percent-encoding (rest_query_path): unreserved bytes stay one byte, others take three.
        int encoded = 0;
        for (const char *p = s->soql; *p; ++p)
            encoded += (isalnum((unsigned char)*p) || strchr("-_.~", *p) != nullptr) ? 1 : 3;
        if (encoded + 200 > kMaxRestUrlBytes)
            s->engine = 2;
    }
}

void begin_scan(ForeignScanState *node, int eflags) {
    ForeignScan *fs = (ForeignScan *)node->ss.ps.plan;
    List *priv = fs->fdw_private;
    Relation rel = node->ss.ss_currentRelation;
    SfTable *table = sf_table_for(RelationGetRelid(rel), false);
    SfScanState *s = (SfScanState *)palloc0(sizeof(SfScanState));
    node->fdw_state = s;
    s->table = table;
    s->planned_engine = intVal(list_nth(priv, kPrivEngine));
    bool explain_only = (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0;
    int nruntime = intVal(list_nth(priv, kPrivRuntimeCount));
    List *pushed = list_copy_tail(fs->fdw_exprs, nruntime);
    s->npushed = list_length(pushed);
    s->unsent = (bool *)palloc0(sizeof(bool) * Max(s->npushed, 1));
    if (!explain_only) {
        ListCell *lc;
        foreach (lc, list_copy_head(fs->fdw_exprs, nruntime))
            s->runtime_states =
                lappend(s->runtime_states, ExecInitExpr((Expr *)lfirst(lc), (PlanState *)node));
    }
    s->soql_context =
        AllocSetContextCreate(node->ss.ps.state->es_query_cxt, "salesforce scan SOQL", ALLOCSET_SMALL_SIZES);
    // EXPLAIN shows the statement with its runtime values as "?"; a scan writes it when it first reads,
    // once the values of parameters from an outer query exist (postgres_fdw opens its cursor then too).
    if (explain_only) {
        build_soql(node, s, true);
        return;
    }
    List *column_select = (List *)list_nth(priv, kPrivColumnSelect);
    int *selects = (int *)palloc(sizeof(int) * Max(list_length(column_select), 1));
    for (int i = 0; i < list_length(column_select); ++i)
        selects[i] = list_nth_int(column_select, i);
    init_conversion(&s->conv, rel, table, selects);
    s->row_context =
        AllocSetContextCreate(node->ss.ps.state->es_query_cxt, "salesforce scan row", ALLOCSET_DEFAULT_SIZES);
    // The fetch is freed with the executor's memory (normal end, error or cancel alike).
    s->cleanup.func = delete_fetch;
    s->cleanup.arg = s;
    MemoryContextRegisterResetCallback(node->ss.ps.state->es_query_cxt, &s->cleanup);
}

// The scan's fetch of s->soql with the fields' paths, through s->engine; owned by `s` (delete_fetch).
void create_fetch(SfScanState *s, List *fields) {
    struct Io {
        SfScanState *s;
        List *fields;
    } io{s, fields};
    guarded_void_call(
        [](void *arg) {
            Io *io = static_cast<Io *>(arg);
            SfScanState *st = io->s;
            std::vector<SoqlPath> paths;
            ListCell *lc;
            foreach (lc, io->fields)
                paths.push_back(SoqlPath{strVal(lfirst(lc))});
            OrgCall org{st->table->server_name, parse_api_version(st->table->api_version)};
            st->fetch = new SalesforceFetch(std::move(org), st->soql, std::move(paths), st->engine == 2);
        },
        &io);
}

// Writes the SOQL with the runtime values of now and sends it: at the first read, and after a rescan that
// brought new parameter values.
void start_fetch(ForeignScanState *node, SfScanState *s) {
    ForeignScan *fs = (ForeignScan *)node->ss.ps.plan;
    List *priv = fs->fdw_private;
    Relation rel = node->ss.ss_currentRelation;
    SfTable *table = s->table;
    build_soql(node, s, false);
    // Bulk query jobs return no compound or base64 fields.
    if (s->engine == 2) {
        List *column_select = (List *)list_nth(priv, kPrivColumnSelect);
        for (int attno = 1; attno <= table->natts; ++attno) {
            const SfColumn *c = &table->columns[attno - 1];
            if (list_nth_int(column_select, attno - 1) >= 0 && !c->bulk_selectable)
                ereport(ERROR,
                        (errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
                         errmsg("salesforce foreign table %s: Bulk API query jobs cannot return %s.%s",
                                RelationGetRelationName(rel), table->object, c->field),
                         errhint("Read it with the REST engine (engine 'rest'), or leave the column out.")));
        }
    }
    if (intVal(list_nth(priv, kPrivWhereTooLong)) != 0 && s->notice == nullptr && !s->notice_given)
        s->notice = psprintf(
            "the WHERE clause is longer than Salesforce accepts in a query (%d characters); it is evaluated "
            "locally, on every row of %s",
            kMaxSoqlChars, table->object);
    if (s->notice != nullptr) {
        s->notice_given = true;
        ereport(NOTICE, (errmsg("salesforce foreign table %s: %s", RelationGetRelationName(rel), s->notice)));
        s->notice = nullptr;
    }
    if (s->fetch != nullptr)
        guarded_void_call(
            [](void *arg) {
                auto *st = static_cast<SfScanState *>(arg);
                st->fetch->restart(st->soql, st->engine == 2);
            },
            s);
    else
        create_fetch(s, (List *)list_nth(priv, kPrivFields));
    s->started = true;
}

// The current row's value at SELECT position `position`, as a palloc'd C string, or nullptr for NULL.
struct RowIo {
    SalesforceFetch *fetch;
    bool done;
    int nvalues;
    char **values;
};

void fetch_row(void *arg) {
    RowIo *io = static_cast<RowIo *>(arg);
    const SalesforceFetch::Row *row = io->fetch->next();
    if (row == nullptr) {
        io->done = true;
        return;
    }
    io->nvalues = static_cast<int>(row->size());
    io->values = pg_call([io] { return (char **)palloc0(sizeof(char *) * Max(io->nvalues, 1)); });
    for (int i = 0; i < io->nvalues; ++i) {
        const std::optional<std::string> &v = (*row)[i];
        if (v)
            io->values[i] = pg_call([&v] { return pnstrdup(v->data(), v->size()); });
    }
}

Datum array_from(RowConversion *s, int i, const char *text) {
    // A multipicklist: "a;b;c".
    List *parts = NIL;
    const char *start = text;
    for (const char *p = text;; ++p) {
        if (*p == ';' || *p == '\0') {
            parts = lappend(parts, pnstrdup(start, p - start));
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    int n = list_length(parts);
    Datum *elems = (Datum *)palloc(sizeof(Datum) * Max(n, 1));
    int k = 0;
    ListCell *lc;
    foreach (lc, parts)
        elems[k++] = InputFunctionCall(&s->input[i], (char *)lfirst(lc), s->ioparam[i], -1);
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(s->array_element[i], &typlen, &typbyval, &typalign);
    return PointerGetDatum(construct_array(elems, n, s->array_element[i], typlen, typbyval, typalign));
}

void conversion_error_context(void *arg) {
    RowConversion *conv = (RowConversion *)arg;
    if (conv->converting < 0)
        return;
    const SfColumn *c = &conv->table->columns[conv->converting];
    errcontext("column \"%s\" (%s.%s) of salesforce foreign table \"%s\", row " INT64_FORMAT,
               conv->column_names[conv->converting], conv->table->object, c->field ? c->field : "?",
               conv->table_name, conv->row_number);
}

void convert_row(RowConversion *conv, RowIo *io, Datum *values, bool *nulls) {
    ErrorContextCallback callback;
    callback.callback = conversion_error_context;
    callback.arg = conv;
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    ++conv->row_number;
    for (int i = 0; i < conv->natts; ++i) {
        int position = conv->column_select[i];
        const char *text = position >= 0 && position < io->nvalues ? io->values[position] : nullptr;
        nulls[i] = text == nullptr;
        conv->converting = i;
        if (text == nullptr)
            values[i] = (Datum)0;
        else if (conv->is_array[i])
            values[i] = array_from(conv, i, text);
        else
            values[i] = InputFunctionCall(&conv->input[i], (char *)text, conv->ioparam[i], conv->typmod[i]);
    }
    conv->converting = -1;
    error_context_stack = callback.previous;
}

TupleTableSlot *iterate_scan(ForeignScanState *node) {
    SfScanState *s = (SfScanState *)node->fdw_state;
    if (!s->started)
        start_fetch(node, s);
    TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
    ExecClearTuple(slot);
    MemoryContextReset(s->row_context);
    MemoryContext old = MemoryContextSwitchTo(s->row_context);
    RowIo io{s->fetch, false, 0, nullptr};
    guarded_void_call(fetch_row, &io);
    if (!io.done) {
        convert_row(&s->conv, &io, slot->tts_values, slot->tts_isnull);
        ExecStoreVirtualTuple(slot);
    }
    MemoryContextSwitchTo(old);
    return slot;
}

// A rescan reads again; with new parameter values (a correlated subquery's, say) the SOQL changes too, so
// it is written again at the next read.
void rescan(ForeignScanState *node) {
    SfScanState *s = (SfScanState *)node->fdw_state;
    if (!s->started)
        return;
    if (node->ss.ps.chgParam != nullptr) {
        s->started = false;
        return;
    }
    guarded_void_call(
        [](void *arg) {
            auto *st = static_cast<SfScanState *>(arg);
            st->fetch->restart(st->soql, st->engine == 2);
        },
        s);
}

void end_scan(ForeignScanState *node) {
    SfScanState *s = (SfScanState *)node->fdw_state;
    if (s != nullptr && s->fetch != nullptr)
        delete_fetch(s);
}

void explain_scan(ForeignScanState *node, ExplainState *es) {
    SfScanState *s = (SfScanState *)node->fdw_state;
    ExplainPropertyText("Salesforce Engine", s->engine == 2 ? "Bulk API 2.0 query job" : "REST query", es);
    ExplainPropertyText("SOQL", s->soql != nullptr ? s->soql : "(not sent: the scan read no row)", es);
    if (es->analyze && s->fetch != nullptr) {
        const FetchStats &stats = s->fetch->stats();
        ExplainPropertyInteger("Salesforce Pages", nullptr, stats.pages, es);
        ExplainPropertyInteger("Salesforce API Calls", nullptr, stats.api_calls, es);
    }
}

// ANALYZE reads every row of the object (through the engine a full scan would use) and keeps a
// reservoir sample of them, as postgres_fdw does for a remote table.
int acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows, double *totalrows,
                        double *totaldeadrows) {
    SfTable *table = sf_table_for(RelationGetRelid(rel), true);
    int engine = settings.scan_engine != 0                   ? settings.scan_engine
                 : table->engine != 0                        ? table->engine
                 : table->row_count > settings.rest_max_rows ? 2
                                                             : 1;
    // Every column's field once; a Bulk job cannot return compound and base64 fields (left NULL).
    List *column_select = NIL;
    List *fields = select_list(table, nullptr, true, engine == 2, &column_select);
    int *selects = (int *)palloc(sizeof(int) * Max(table->natts, 1));
    for (int i = 0; i < table->natts; ++i)
        selects[i] = list_nth_int(column_select, i);
    StringInfoData soql;
    initStringInfo(&soql);
    ListCell *lc;
    foreach (lc, fields)
        appendStringInfo(&soql, "%s%s", soql.len == 0 ? "SELECT " : ", ", strVal(lfirst(lc)));
    appendStringInfo(&soql, " FROM %s", table->object);

    SfScanState *s = (SfScanState *)palloc0(sizeof(SfScanState));
    s->soql = soql.data;
    init_conversion(&s->conv, rel, table, selects);
    // The fetch lives in a context of its own: deleting it (at the end, or on an error) deletes the fetch.
    MemoryContext fetch_context =
        AllocSetContextCreate(CurrentMemoryContext, "salesforce analyze", ALLOCSET_SMALL_SIZES);
    s->cleanup.func = delete_fetch;
    s->cleanup.arg = s;
    MemoryContextRegisterResetCallback(fetch_context, &s->cleanup);
    s->table = table;
    s->engine = engine;
    create_fetch(s, fields);
    MemoryContext row_context =
        AllocSetContextCreate(CurrentMemoryContext, "salesforce analyze row", ALLOCSET_DEFAULT_SIZES);
    TupleDesc desc = RelationGetDescr(rel);
    Datum *values = (Datum *)palloc(sizeof(Datum) * Max(desc->natts, 1));
    bool *nulls = (bool *)palloc(sizeof(bool) * Max(desc->natts, 1));
    ReservoirStateData reservoir;
    reservoir_init_selection_state(&reservoir, targrows);
    double seen = 0;
    double skip = -1;
    int kept = 0;
    for (;;) {
        vacuum_delay_point();
        MemoryContextReset(row_context);
        MemoryContext caller = MemoryContextSwitchTo(row_context);
        RowIo row{s->fetch, false, 0, nullptr};
        guarded_void_call(fetch_row, &row);
        if (row.done) {
            MemoryContextSwitchTo(caller);
            break;
        }
        convert_row(&s->conv, &row, values, nulls);
        MemoryContextSwitchTo(caller);
        if (kept < targrows) {
            rows[kept++] = heap_form_tuple(desc, values, nulls);
        } else {
            if (skip < 0)
                skip = reservoir_get_next_S(&reservoir, seen, targrows);
            if (skip <= 0) {
                int k = (int)(targrows * sampler_random_fract(&reservoir.randstate));
                heap_freetuple(rows[k]);
                rows[k] = heap_form_tuple(desc, values, nulls);
            }
            skip -= 1;
        }
        seen += 1;
    }
    MemoryContextDelete(row_context);
    MemoryContextDelete(fetch_context);
    *totalrows = seen;
    *totaldeadrows = 0;
    ereport(elevel, (errmsg("\"%s\": read %.0f rows of %s from Salesforce, %d kept in the sample",
                            RelationGetRelationName(rel), seen, table->object, kept)));
    return kept;
}

bool analyze_table(Relation, AcquireSampleRowsFunc *func, BlockNumber *totalpages) {
    *func = acquire_sample_rows;
    *totalpages = 1;
    return true;
}

// INSERT, UPDATE and DELETE go through the Bulk API functions, which run as jobs in the worker.
List *plan_modify(PlannerInfo *root, ModifyTable *plan, Index resultRelation, int) {
    RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
    const char *verb = plan->operation == CMD_INSERT   ? "insert into"
                       : plan->operation == CMD_UPDATE ? "update"
                                                       : "delete from";
    const char *function = plan->operation == CMD_INSERT   ? "sf_bulk_insert or sf_bulk_upsert"
                           : plan->operation == CMD_UPDATE ? "sf_bulk_update or sf_bulk_upsert"
                                                           : "sf_bulk_delete";
    ereport(ERROR,
            (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
             errmsg("cannot %s salesforce foreign table \"%s\"", verb, get_rel_name(rte->relid)),
             errhint("Salesforce foreign tables are read-only; write with %s, which run as Bulk API jobs.",
                     function)));
    return NIL;
}

}  // namespace

}  // namespace sfb::pg

extern "C" {
PG_FUNCTION_INFO_V1(sf_bulk_fdw_handler);
Datum sf_bulk_fdw_handler(PG_FUNCTION_ARGS) {
    FdwRoutine *routine = makeNode(FdwRoutine);
    routine->GetForeignRelSize = sfb::pg::get_rel_size;
    routine->GetForeignPaths = sfb::pg::get_paths;
    routine->GetForeignPlan = sfb::pg::get_plan;
    routine->BeginForeignScan = sfb::pg::begin_scan;
    routine->IterateForeignScan = sfb::pg::iterate_scan;
    routine->ReScanForeignScan = sfb::pg::rescan;
    routine->EndForeignScan = sfb::pg::end_scan;
    routine->ExplainForeignScan = sfb::pg::explain_scan;
    routine->PlanForeignModify = sfb::pg::plan_modify;
    routine->AnalyzeForeignTable = sfb::pg::analyze_table;
    routine->ImportForeignSchema = sfb::pg::sf_import_foreign_schema;
    PG_RETURN_POINTER(routine);
}
}
