#include "value_format.h"

extern "C" {
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace sfb::pg {

enum class Handling : uint8 {
    Boolean,
    Number,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Varlena,
    Name,
    TextArray,
    Output
};

struct ColumnFormat {
    Handling handling;
    // Looked up once (OidOutputFunctionCall would repeat fmgr_info per value); mutable because an output
    // function may cache in fn_extra.
    mutable FmgrInfo output_function;
    Oid element_type;
    int16 element_length;
    bool element_by_value;
    char element_align;
    const char *name;
};

namespace {

bool is_text_like(Oid type) {
    return type == TEXTOID || type == VARCHAROID || type == BPCHAROID;
}

Handling handling_for(Oid type, Oid *element) {
    *element = InvalidOid;
    switch (type) {
        case BOOLOID:
            return Handling::Boolean;
        case INT2OID:
        case INT4OID:
        case INT8OID:
        case OIDOID:
        case NUMERICOID:
        case FLOAT4OID:
        case FLOAT8OID:
            return Handling::Number;
        case DATEOID:
            return Handling::Date;
        case TIMESTAMPOID:
            return Handling::Timestamp;
        case TIMESTAMPTZOID:
            return Handling::TimestampTz;
        case TIMEOID:
            return Handling::Time;
        case NAMEOID:
            return Handling::Name;
        default:
            break;
    }
    if (is_text_like(type))
        return Handling::Varlena;
    Oid element_type = get_element_type(type);
    if (OidIsValid(element_type) && is_text_like(getBaseType(element_type))) {
        *element = element_type;
        return Handling::TextArray;
    }
    return Handling::Output;  // json, jsonb, uuid, … : their own text form
}

[[noreturn]] void cannot_send(const ColumnFormat &format, const char *why) {
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                    errmsg("a value of column \"%s\" cannot be sent to Salesforce: %s", format.name, why)));
    pg_unreachable();
}

void set_text(FieldValue *out, const char *text, int length) {
    out->kind = FieldKind::Text;
    out->text = text;
    out->length = length;
}

// Salesforce parses four-digit years only; say which column holds the value it could not take.
void check_year(const ColumnFormat &format, int year) {
    if (year < 1 || year > 9999)
        cannot_send(format, "years outside 1 to 9999 have no Salesforce form");
}

void set_civil_from_tm(FieldValue *out, FieldKind kind, const struct pg_tm &tm, fsec_t fsec) {
    out->kind = kind;
    out->civil.year = tm.tm_year;
    out->civil.month = tm.tm_mon;
    out->civil.day = tm.tm_mday;
    out->civil.hour = tm.tm_hour;
    out->civil.minute = tm.tm_min;
    out->civil.second = tm.tm_sec;
    // Salesforce keeps milliseconds; truncating (not rounding) never carries into the next second.
    out->civil.millisecond = fsec / 1000;
}

void format_utc(const ColumnFormat &format, TimestampTz value, FieldValue *out) {
    if (TIMESTAMP_NOT_FINITE(value))
        cannot_send(format, "infinite timestamps have no Salesforce form");
    struct pg_tm tm;
    fsec_t fsec;
    // No time zone pointer: the broken-down time is UTC.
    if (timestamp2tm(value, nullptr, &tm, &fsec, nullptr, nullptr) != 0)
        cannot_send(format, "timestamp out of range");
    check_year(format, tm.tm_year);
    set_civil_from_tm(out, FieldKind::DateTime, tm, fsec);
}

void format_text_array(const ColumnFormat &format, Datum value, FieldValue *out) {
    ArrayType *array = DatumGetArrayTypeP(value);
    Datum *elements;
    bool *nulls;
    int count;
    deconstruct_array(array, format.element_type, format.element_length, format.element_by_value,
                      format.element_align, &elements, &nulls, &count);
    StringInfoData joined;
    initStringInfo(&joined);
    for (int i = 0; i < count; ++i) {
        if (nulls[i])
            cannot_send(format, "a multi-select picklist array has a NULL element");
        text *element = DatumGetTextPP(elements[i]);
        const char *data = VARDATA_ANY(element);
        int length = VARSIZE_ANY_EXHDR(element);
        if (memchr(data, ';', length) != nullptr)
            cannot_send(format, "a multi-select picklist value contains ';', which separates the values");
        if (i > 0)
            appendStringInfoChar(&joined, ';');
        appendBinaryStringInfo(&joined, data, length);
    }
    set_text(out, joined.data, joined.len);
}

}  // namespace

ColumnFormat *plan_column_formats(TupleDesc desc, const bool *as_postgres_text) {
    auto *formats = static_cast<ColumnFormat *>(palloc0(sizeof(ColumnFormat) * Max(desc->natts, 1)));
    for (int i = 0; i < desc->natts; ++i) {
        Form_pg_attribute attribute = TupleDescAttr(desc, i);
        ColumnFormat &format = formats[i];
        format.name = NameStr(attribute->attname);
        Oid base = getBaseType(attribute->atttypid);
        format.handling = handling_for(base, &format.element_type);
        if (as_postgres_text != nullptr && as_postgres_text[i])
            format.handling = Handling::Output;
        bool is_varlena;
        Oid output_function;
        getTypeOutputInfo(attribute->atttypid, &output_function, &is_varlena);
        fmgr_info(output_function, &format.output_function);
        if (format.handling == Handling::TextArray)
            get_typlenbyvalalign(format.element_type, &format.element_length, &format.element_by_value,
                                 &format.element_align);
    }
    return formats;
}

void format_row(const ColumnFormat *formats, int natts, const Datum *values, const bool *nulls,
                FieldValue *out) {
    for (int i = 0; i < natts; ++i) {
        const ColumnFormat &format = formats[i];
        FieldValue *field = &out[i];
        bool is_null = nulls[i];
        Datum value = values[i];
        if (is_null) {
            field->kind = FieldKind::Null;
            continue;
        }
        switch (format.handling) {
            case Handling::Boolean:
                if (DatumGetBool(value))
                    set_text(field, "true", 4);
                else
                    set_text(field, "false", 5);
                break;
            case Handling::Number: {
                char *text = OutputFunctionCall(&format.output_function, value);
                field->kind = FieldKind::Number;
                field->text = text;
                field->length = static_cast<int>(strlen(text));
                break;
            }
            case Handling::Date: {
                DateADT date = DatumGetDateADT(value);
                if (DATE_NOT_FINITE(date))
                    cannot_send(format, "infinite dates have no Salesforce form");
                int year, month, day;
                j2date(date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
                check_year(format, year);
                field->kind = FieldKind::Date;
                field->civil = CivilDateTime{year, month, day, 0, 0, 0, 0};
                break;
            }
            case Handling::TimestampTz:
                format_utc(format, DatumGetTimestampTz(value), field);
                break;
            case Handling::Timestamp: {
                // A timestamp without zone means wall-clock time in the session's TimeZone.
                Timestamp local = DatumGetTimestamp(value);
                if (TIMESTAMP_NOT_FINITE(local))
                    cannot_send(format, "infinite timestamps have no Salesforce form");
                format_utc(format, DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, value)),
                           field);
                break;
            }
            case Handling::Time: {
                struct pg_tm tm;
                fsec_t fsec;
                time2tm(DatumGetTimeADT(value), &tm, &fsec);
                set_civil_from_tm(field, FieldKind::Time, tm, fsec);
                break;
            }
            case Handling::Varlena: {
                text *t = DatumGetTextPP(value);
                set_text(field, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
                break;
            }
            case Handling::Name: {
                const char *name = NameStr(*DatumGetName(value));
                set_text(field, name, static_cast<int>(strlen(name)));
                break;
            }
            case Handling::TextArray:
                format_text_array(format, value, field);
                break;
            case Handling::Output: {
                char *text = OutputFunctionCall(&format.output_function, value);
                set_text(field, text, static_cast<int>(strlen(text)));
                break;
            }
        }
    }
}

}  // namespace sfb::pg
