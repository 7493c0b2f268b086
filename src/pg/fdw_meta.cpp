#include "core/bulk_api.h"
#include "core/describe.h"
#include "core/error.h"
#include "core/fdw_options.h"
#include "core/ingest_preflight.h"
#include "core/text_util.h"
#include "core/type_map.h"

#include "pg_headers.h"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include "backend_call.h"
#include "describe_cache.h"
#include "fdw_meta.h"
#include "guard.h"
#include "org_access.h"
#include "settings.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace sfb::pg {

namespace {

struct ColumnDecl {
    bool dropped = false;
    std::string name;
    std::string pg_type;  // format_type_with_typemod
    Oid type_oid = InvalidOid;
    int32 type_mod = -1;
    bool is_array = false;
    OptionList options;
};

struct TableDecl {
    std::string qualified_name;  // for messages
    std::string relname;
    std::string server;
    Oid serverid = InvalidOid;
    OptionList options;
    std::vector<ColumnDecl> columns;
};

TableDecl read_table(Oid relid) {
    TableDecl t;
    // PostgreSQL calls only; the strings land in the caller's containers, which outlive an ERROR.
    pg_call([&] {
        ForeignTable *table = GetForeignTable(relid);
        ForeignServer *server = GetForeignServer(table->serverid);
        t.server = server->servername;
        t.serverid = server->serverid;
        read_options(table->options, t.options);
        Relation rel = table_open(relid, AccessShareLock);
        t.relname = RelationGetRelationName(rel);
        t.qualified_name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
                                                      RelationGetRelationName(rel));
        TupleDesc desc = RelationGetDescr(rel);
        t.columns.resize(desc->natts);
        for (int i = 0; i < desc->natts; ++i) {
            Form_pg_attribute att = TupleDescAttr(desc, i);
            ColumnDecl &c = t.columns[i];
            c.dropped = att->attisdropped;
            if (c.dropped)
                continue;
            c.name = NameStr(att->attname);
            c.type_oid = att->atttypid;
            c.type_mod = att->atttypmod;
            c.pg_type = format_type_with_typemod(att->atttypid, att->atttypmod);
            c.is_array = OidIsValid(get_element_type(att->atttypid));
            read_options(GetForeignColumnOptions(relid, att->attnum), c.options);
        }
        table_close(rel, AccessShareLock);
    });
    return t;
}

// The describe of one object, parsed once per answer: planning a query reads the cache row each time,
// parsing it again only when Salesforce's answer changed.
const ObjectDescribe &parsed_describe(const OrgCall &org, const std::string &object) {
    struct Parsed {
        std::string body;
        ObjectDescribe describe;
    };
    static std::map<std::tuple<std::string, Oid, std::string>, Parsed> memo;
    std::string body = cached_describe(org, object, false, "salesforce foreign table");
    Parsed &p = memo[{org.server, GetUserId(), ascii_lowercase(object)}];
    if (p.body != body || p.describe.name.empty()) {
        p.describe = parse_sobject_describe(body);
        p.body = std::move(body);
    }
    return p.describe;
}

// Rows of `object`, from /limits/recordCount, kept for sf_bulk.describe_ttl: a planner estimate, never a
// reason to fail a query (an answer without the object, Salesforce omits empty ones, is "unknown").
double row_count(const OrgCall &org, const std::string &object) {
    using Clock = std::chrono::steady_clock;
    struct Count {
        double rows = -1;
        Clock::time_point at;
    };
    static std::map<std::tuple<std::string, Oid, std::string>, Count> counts;
    auto key = std::make_tuple(org.server, GetUserId(), ascii_lowercase(object));
    auto found = counts.find(key);
    if (found != counts.end() &&
        Clock::now() - found->second.at < std::chrono::seconds(settings.describe_ttl_s))
        return found->second.rows;
    HttpRequest request;
    request.url = record_count_path(org.api_version, object);
    request.headers.emplace_back("Accept", "application/json");
    HttpResponse response = call_org(org, std::move(request), "salesforce foreign table");
    Count c;
    c.at = Clock::now();
    if (response.status == 200)
        if (std::optional<std::int64_t> n = parse_record_count(response.body, object))
            c.rows = static_cast<double>(*n);
    counts[key] = c;
    return c.rows;
}

bool type_is(Oid type, std::initializer_list<Oid> types) {
    for (Oid t : types)
        if (t == type)
            return true;
    return false;
}

// The literal kind of a field as a column of this type holds it. A mismatch (a number field in a text
// column compares as text in PostgreSQL) is never pushed down.
int value_kind(const FieldDescribe &f, const ColumnDecl &c) {
    std::string type = ascii_lowercase(f.type);
    bool textual = type_is(c.type_oid, {TEXTOID, VARCHAROID});
    if (type == "id" || type == "reference")
        return textual ? kSfId : kSfUnsupported;
    if (type == "string" || type == "textarea" || type == "picklist" || type == "email" || type == "phone" ||
        type == "url" || type == "combobox" || type == "encryptedstring")
        return textual ? kSfText : kSfUnsupported;
    if (type == "int" || type == "double" || type == "currency" || type == "percent" || type == "long")
        return type_is(c.type_oid, {NUMERICOID, INT2OID, INT4OID, INT8OID}) ? kSfNumber : kSfUnsupported;
    if (type == "boolean")
        return c.type_oid == BOOLOID ? kSfBoolean : kSfUnsupported;
    if (type == "date")
        return c.type_oid == DATEOID ? kSfDate : kSfUnsupported;
    if (type == "datetime")
        return c.type_oid == TIMESTAMPTZOID ? kSfDateTime : kSfUnsupported;
    return kSfUnsupported;
}

std::string field_names_of(const ObjectDescribe &d, const std::string &wanted) {
    std::vector<std::string> names;
    for (const FieldDescribe &f : d.fields)
        names.push_back(f.name);
    std::vector<std::string> close = closest_names(wanted, names);
    std::string out;
    for (const std::string &n : close)
        out += (out.empty() ? "" : ", ") + n;
    return out;
}

struct Resolved {
    std::string server, api_version, object;
    int engine = 0;
    double rows = -1;
    std::vector<SfColumn> columns;    // field pointers filled from `fields` below
    std::vector<std::string> fields;  // "" for dropped columns
};

Resolved resolve(Oid relid, bool with_row_count) {
    TableDecl t = read_table(relid);
    OrgCredentials credentials = read_org_credentials(OrgKey{t.server, GetUserId()});
    ForeignTableSettings table;
    try {
        table = foreign_table_settings(t.options);
    } catch (const Error &e) {
        raise_error(ERRCODE_FDW_INVALID_OPTION_NAME, "foreign table " + t.qualified_name + ": " + e.what());
    }
    OrgCall org{t.server, parse_api_version(credentials.server.api_version)};
    std::string object = table.object.empty() ? t.relname : table.object;
    const ObjectDescribe &d = parsed_describe(org, object);
    Resolved r;
    r.server = t.server;
    r.api_version = credentials.server.api_version;
    r.object = d.name;
    r.engine = static_cast<int>(table.engine.value_or(credentials.server.engine));
    for (const ColumnDecl &c : t.columns) {
        SfColumn col{};
        r.columns.push_back(col);
        r.fields.emplace_back();
        if (c.dropped)
            continue;
        std::string wanted;
        try {
            wanted = column_field(c.options);
        } catch (const Error &e) {
            raise_error(ERRCODE_FDW_INVALID_OPTION_NAME,
                        "foreign table " + t.qualified_name + " column \"" + c.name + "\": " + e.what());
        }
        if (wanted.empty())
            wanted = c.name;
        const FieldDescribe *f = d.find_field(wanted);
        if (f == nullptr) {
            std::string close = field_names_of(d, wanted);
            raise_error(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND,
                        "foreign table " + t.qualified_name + " column \"" + c.name + "\": " + d.name +
                            " has no field \"" + wanted + "\"" +
                            (close.empty() ? std::string() : " (closest: " + close + ")"),
                        "", "Name the field with the column option field, e.g. OPTIONS (field 'Name').");
        }
        std::string why;
        if (!pg_type_accepts(c.pg_type, *f, &why))
            raise_error(ERRCODE_FDW_INVALID_DATA_TYPE, "foreign table " + t.qualified_name + " column \"" +
                                                           c.name + "\" (" + c.pg_type + ") cannot hold " +
                                                           d.name + "." + f->name + ": " + why);
        PgColumnType mapped = pg_type_for(*f);
        SfColumn &out = r.columns.back();
        out.kind = value_kind(*f, c);
        out.filterable = f->filterable;
        out.sortable = f->sortable;
        out.case_sensitive = f->case_sensitive;
        std::string type = ascii_lowercase(f->type);
        out.unique_key = type == "id" || (f->id_lookup && (f->unique || f->external_id));
        out.bulk_selectable = mapped.bulk_selectable;
        out.is_array = c.is_array;
        out.type_oid = c.type_oid;
        out.type_mod = c.type_mod;
        r.fields.back() = f->name;
    }
    if (with_row_count)
        r.rows = row_count(org, r.object);
    return r;
}

void build(void *arg) {
    auto *io = static_cast<std::pair<Oid, std::pair<bool, SfTable *>> *>(arg);
    Oid relid = io->first;
    bool connected = false;
    pg_call([&connected] {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "SPI_connect failed");
        connected = true;
    });
    Resolved r = resolve(relid, io->second.first);
    pg_call([] { SPI_finish(); });
    (void)connected;
    io->second.second = pg_call([&r, relid] {
        SfTable *t = static_cast<SfTable *>(palloc0(sizeof(SfTable)));
        t->relid = relid;
        t->server_name = pstrdup(r.server.c_str());
        t->api_version = pstrdup(r.api_version.c_str());
        t->object = pstrdup(r.object.c_str());
        t->engine = r.engine;
        t->row_count = r.rows;
        t->natts = static_cast<int>(r.columns.size());
        t->columns = static_cast<SfColumn *>(palloc0(sizeof(SfColumn) * Max(t->natts, 1)));
        for (int i = 0; i < t->natts; ++i) {
            t->columns[i] = r.columns[i];
            t->columns[i].field = r.fields[i].empty() ? nullptr : pstrdup(r.fields[i].c_str());
        }
        t->serverid = GetForeignTable(relid)->serverid;
        return t;
    });
}

}  // namespace

SfTable *sf_table_for(Oid relid, bool with_row_count) {
    std::pair<Oid, std::pair<bool, SfTable *>> io{relid, {with_row_count, nullptr}};
    guarded_void_call(build, &io);
    return io.second.second;
}

}  // namespace sfb::pg
