#include "core/sf_names.h"

#include "core/error.h"

#include <stdexcept>

namespace sfb {

namespace {

// <cctype> is locale-dependent and would let through bytes >= 0x80 in some locales; names must be ASCII.
bool is_ascii_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_ascii_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_ascii_alnum(char c) {
    return is_ascii_alpha(c) || is_ascii_digit(c);
}
bool is_ascii_upper(char c) {
    return c >= 'A' && c <= 'Z';
}

// Returns a reason (without the value) when `name` breaks the identifier grammar of sf_names.h.
std::optional<std::string> identifier_problem(std::string_view name) {
    if (name.empty()) {
        return std::string("is empty");
    }
    if (name.size() > kMaxIdentifierLength) {
        return "is longer than " + std::to_string(kMaxIdentifierLength) + " characters";
    }
    for (char c : name) {
        if (static_cast<unsigned char>(c) >= 0x80) {
            return std::string("contains a non-ASCII character (Salesforce API names are ASCII only)");
        }
        if (!is_ascii_alnum(c) && c != '_') {
            return std::string("contains a character other than letters, digits and underscores");
        }
    }
    if (!is_ascii_alpha(name.front())) {
        return std::string("must start with a letter");
    }
    if (name.back() == '_') {
        return std::string("must not end with an underscore");
    }
    if (name.find("___") != std::string_view::npos) {
        return std::string("must not contain three consecutive underscores");
    }
    int separators = 0;
    for (std::size_t i = 0; i + 1 < name.size(); ++i) {
        if (name[i] == '_' && name[i + 1] == '_') {
            ++separators;
            if (i + 2 < name.size() && !is_ascii_alpha(name[i + 2])) {
                return std::string("has a \"__\" not followed by a letter");
            }
            ++i;
        }
    }
    if (separators > 3) {
        return std::string("has too many \"__\" separators");
    }
    return std::nullopt;
}

std::optional<std::string> named_problem(std::string_view what, std::string_view value) {
    if (auto problem = identifier_problem(value)) {
        return "invalid Salesforce " + std::string(what) + " " + quote_for_message(value) + ": " + *problem;
    }
    return std::nullopt;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

constexpr std::string_view kChecksumAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

char checksum_char(std::string_view block5) {
    unsigned bits = 0;
    for (std::size_t i = 0; i < 5; ++i) {
        if (is_ascii_upper(block5[i])) {
            bits |= 1u << i;
        }
    }
    return kChecksumAlphabet[bits];
}

char ascii_upper(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

}  // namespace

std::string quote_for_message(std::string_view value, std::size_t max_bytes) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out = "\"";
    const std::size_t n = value.size() < max_bytes ? value.size() : max_bytes;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(value[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    if (value.size() > max_bytes) {
        out += "...";
    }
    return out;
}

std::optional<std::string> object_name_error(std::string_view name) {
    return named_problem("object name", name);
}

std::optional<std::string> field_name_error(std::string_view name) {
    return named_problem("field name", name);
}

bool is_valid_object_name(std::string_view name) {
    return !identifier_problem(name);
}
bool is_valid_field_name(std::string_view name) {
    return !identifier_problem(name);
}

void validate_object_name(std::string_view name) {
    if (auto e = object_name_error(name)) {
        throw Error(ErrorKind::InvalidParameter, *e);
    }
}

void validate_field_name(std::string_view name) {
    if (auto e = field_name_error(name)) {
        throw Error(ErrorKind::InvalidParameter, *e);
    }
}

std::optional<std::string> column_name_error(std::string_view column) {
    const auto fail = [&](const std::string &why) {
        return std::optional<std::string>("invalid Salesforce column name " + quote_for_message(column) +
                                          ": " + why);
    };
    // Bound the work and the echo before splitting: Type:Rel.Field is at most three identifiers.
    if (column.size() > 3 * kMaxIdentifierLength + 2) {
        return fail("is too long");
    }
    const std::size_t colon = column.find(':');
    const std::size_t dot = column.find('.');
    if (dot == std::string_view::npos) {
        if (colon != std::string_view::npos) {
            return fail(
                "a polymorphic type prefix (Type:) needs a relationship path, e.g. Owner:User.Username");
        }
        if (auto p = identifier_problem(column)) {
            return fail(*p);
        }
        return std::nullopt;
    }
    if (column.find('.', dot + 1) != std::string_view::npos) {
        return fail("only one relationship level (Relationship.Field) is allowed in ingest data");
    }
    if (colon != std::string_view::npos &&
        (colon > dot || column.find(':', colon + 1) != std::string_view::npos)) {
        return fail("expected Type:Relationship.Field");
    }
    std::string_view type;
    std::string_view rel = column.substr(0, dot);
    const std::string_view field = column.substr(dot + 1);
    if (colon != std::string_view::npos) {
        type = column.substr(0, colon);
        rel = column.substr(colon + 1, dot - colon - 1);
        if (auto p = identifier_problem(type)) {
            return fail("type prefix " + *p);
        }
    }
    if (auto p = identifier_problem(rel)) {
        return fail("relationship name " + *p);
    }
    if (type.empty() && ends_with(rel, "__c")) {
        return fail(
            "relationship name ends in __c; custom relationships are named with __r (e.g. Parent__r.Ext__c)");
    }
    if (auto p = identifier_problem(field)) {
        return fail("field name " + *p);
    }
    return std::nullopt;
}

bool is_valid_column_name(std::string_view column) {
    return !column_name_error(column);
}

void validate_column_name(std::string_view column) {
    if (auto e = column_name_error(column)) {
        throw Error(ErrorKind::InvalidParameter, *e);
    }
}

std::optional<std::string> record_id_error(std::string_view id) {
    const auto fail = [&](const char *why) {
        return std::optional<std::string>("invalid Salesforce record id " + quote_for_message(id, 24) + ": " +
                                          why);
    };
    if (id.size() != 15 && id.size() != 18) {
        return fail("must be 15 or 18 characters long");
    }
    for (std::size_t i = 0; i < 15; ++i) {
        if (!is_ascii_alnum(id[i])) {
            return fail("must contain only ASCII letters and digits");
        }
    }
    if (id.size() == 18) {
        const std::string expected = record_id_suffix(id.substr(0, 15));
        for (std::size_t i = 0; i < 3; ++i) {
            if (ascii_upper(id[15 + i]) != expected[i]) {
                return fail("checksum suffix does not match the first 15 characters");
            }
        }
    }
    return std::nullopt;
}

bool is_valid_record_id(std::string_view id) {
    return !record_id_error(id);
}

void validate_record_id(std::string_view id) {
    if (auto e = record_id_error(id)) {
        throw Error(ErrorKind::InvalidParameter, *e);
    }
}

std::string record_id_suffix(std::string_view id15) {
    bool ok = id15.size() == 15;
    for (std::size_t i = 0; ok && i < id15.size(); ++i) {
        ok = is_ascii_alnum(id15[i]);
    }
    if (!ok) {
        throw Error(ErrorKind::InvalidParameter,
                    "invalid 15-character Salesforce record id " + quote_for_message(id15, 24));
    }
    std::string suffix(3, ' ');
    for (std::size_t block = 0; block < 3; ++block) {
        suffix[block] = checksum_char(id15.substr(block * 5, 5));
    }
    return suffix;
}

std::string to_id18(std::string_view id) {
    validate_record_id(id);
    return std::string(id.substr(0, 15)) + record_id_suffix(id.substr(0, 15));
}

bool same_record_id(std::string_view a, std::string_view b) {
    return is_valid_record_id(a) && is_valid_record_id(b) && a.substr(0, 15) == b.substr(0, 15);
}

}  // namespace sfb
