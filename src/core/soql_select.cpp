#include "core/soql_select.h"

#include "core/error.h"
#include "core/sf_names.h"
#include "core/text_util.h"

#include <unordered_map>

namespace sfb {

namespace {

enum class TokenKind { Word, Number, String, Punct, End };

struct Token {
    TokenKind kind = TokenKind::End;
    std::string_view text;   // for strings: including the quotes
    std::size_t offset = 0;  // byte offset into the statement
};

bool is_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
// Bytes >= 0x80 are taken into words so that "Accöunt" is one token, refused by sf_names as non-ASCII,
// rather than "Acc" followed by a stray byte.
bool is_non_ascii(char c) {
    return static_cast<unsigned char>(c) >= 0x80;
}
bool is_word_start(char c) {
    return is_alpha(c) || c == '_' || is_non_ascii(c);
}
bool is_word_char(char c) {
    return is_word_start(c) || is_digit(c);
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

class Parser {
  public:
    explicit Parser(std::string_view soql) : soql_(soql) {}

    SoqlSelect run() {
        if (trim_ascii_space(soql_).empty()) {
            throw Error(ErrorKind::InvalidParameter, "the SOQL query is empty");
        }
        lex();
        std::size_t i = 0;
        if (!is_word(i, "SELECT")) {
            fail("expected a SOQL SELECT statement, found " + shown(tokens_[i]), tokens_[i]);
        }
        ++i;
        SoqlSelect out;
        i = parse_select_list(i, out);
        i = parse_from(i, out);
        scan_tail(i, out);
        check_columns(out);
        return out;
    }

  private:
    // ---- errors ----

    // 1-based character (not byte) position, so a name after a non-ASCII string literal is found where the
    // user's editor shows it.
    std::size_t character_at(std::size_t offset) const {
        std::size_t chars = 0;
        for (std::size_t i = 0; i < offset && i < soql_.size(); ++i) {
            if ((static_cast<unsigned char>(soql_[i]) & 0xC0) != 0x80) {
                ++chars;
            }
        }
        return chars + 1;
    }

    [[noreturn]] void fail_at(const std::string &what, std::size_t offset) const {
        throw Error(ErrorKind::InvalidParameter,
                    what + " (at character " + std::to_string(character_at(offset)) + ")");
    }
    [[noreturn]] void fail(const std::string &what, const Token &t) const { fail_at(what, t.offset); }

    static std::string shown(const Token &t) {
        if (t.kind == TokenKind::End) {
            return "the end of the statement";
        }
        return quote_for_message(t.text, 40);
    }

    // ---- lexer ----

    void lex() {
        std::size_t p = 0;
        const std::size_t n = soql_.size();
        while (p < n) {
            const char c = soql_[p];
            if (is_ascii_space(c)) {
                ++p;
                continue;
            }
            const std::size_t start = p;
            const char next = p + 1 < n ? soql_[p + 1] : '\0';
            if (c == '-' && next == '-') {
                fail_at("SOQL has no comments: \"--\" outside a string literal", p);
            }
            if (c == '/' && (next == '*' || next == '/')) {
                fail_at(std::string("SOQL has no comments: \"/") + next + "\" outside a string literal", p);
            }
            if (c == ';') {
                if (trim_ascii_space(soql_.substr(p + 1)).empty()) {
                    fail_at("a trailing ';' is not allowed: SOQL takes one statement without a terminator",
                            p);
                }
                fail_at("';' outside a string literal: SOQL takes exactly one statement", p);
            }
            if (c == '"') {
                fail_at("SOQL string literals use single quotes, not '\"'", p);
            }
            if (c == '\'') {
                p = lex_string(p);
                push(TokenKind::String, start, p);
            } else if (is_word_start(c)) {
                while (p < n && is_word_char(soql_[p])) {
                    ++p;
                }
                push(TokenKind::Word, start, p);
            } else if (is_digit(c)) {
                // Numbers, dates and date-times (2024-01-31T12:00:00+02:00) are one token; their form is
                // Salesforce's business, only a "--" inside one still counts as a comment.
                while (p < n &&
                       (is_word_char(soql_[p]) || soql_[p] == '.' || soql_[p] == ':' || soql_[p] == '+' ||
                        (soql_[p] == '-' && !(p + 1 < n && soql_[p + 1] == '-')))) {
                    ++p;
                }
                push(TokenKind::Number, start, p);
            } else {
                ++p;
                push(TokenKind::Punct, start, p);
            }
        }
        push(TokenKind::End, n, n);
    }

    // Returns the offset just past the closing quote. Escapes per docs/soql-and-rest.md §2.6; \% and \_ are
    // accepted everywhere because only Salesforce knows whether the literal is a LIKE pattern.
    std::size_t lex_string(std::size_t open) const {
        std::size_t p = open + 1;
        const std::size_t n = soql_.size();
        while (p < n) {
            const char c = soql_[p];
            if (c == '\'') {
                return p + 1;
            }
            if (c != '\\') {
                ++p;
                continue;
            }
            if (p + 1 >= n) {
                break;
            }
            const char e = soql_[p + 1];
            static constexpr std::string_view kSimple = "'\"\\nrtbfNRTBF%_";
            if (kSimple.find(e) != std::string_view::npos) {
                p += 2;
            } else if (e == 'u' || e == 'U') {
                for (std::size_t k = 2; k < 6; ++k) {
                    if (p + k >= n || !is_hex(soql_[p + k])) {
                        fail_at("invalid escape in string literal: \\u needs four hex digits", p);
                    }
                }
                p += 6;
            } else {
                fail_at("invalid escape " + quote_for_message(soql_.substr(p, 2)) +
                            " in string literal; SOQL knows \\' \\\" \\\\ \\n \\r \\t \\b \\f \\uXXXX "
                            "(and \\% \\_ in LIKE patterns)",
                        p);
            }
        }
        fail_at("unterminated string literal", open);
    }

    void push(TokenKind kind, std::size_t start, std::size_t end) {
        tokens_.push_back(Token{kind, soql_.substr(start, end - start), start});
    }

    // ---- token tests ----

    bool is_word(std::size_t i, std::string_view keyword) const {
        return tokens_[i].kind == TokenKind::Word && ascii_iequals(tokens_[i].text, keyword);
    }
    bool is_punct(std::size_t i, char c) const {
        return tokens_[i].kind == TokenKind::Punct && tokens_[i].text[0] == c;
    }

    // ---- select list ----

    std::size_t parse_select_list(std::size_t i, SoqlSelect &out) {
        bool after_comma = false;
        for (;;) {
            const Token &t = tokens_[i];
            if (is_word(i, "FROM") || t.kind == TokenKind::End) {
                if (after_comma) {
                    fail("expected a field after ',', found " + shown(t), t);
                }
                if (out.fields.empty()) {
                    fail("the select list is empty; name at least one field", t);
                }
                fail("missing FROM clause", t);
            }
            if (is_punct(i, '(')) {
                if (is_word(i + 1, "SELECT")) {
                    fail(
                        "parent-to-child subqueries such as (SELECT ... FROM Contacts) are not supported "
                        "by Bulk API 2.0 queries",
                        t);
                }
                fail("expected a field name, found " + shown(t), t);
            }
            if (t.kind != TokenKind::Word) {
                fail("expected a field name, found " + shown(t), t);
            }
            if (ascii_iequals(t.text, "TYPEOF")) {
                fail("TYPEOF is not supported by Bulk API 2.0 queries", t);
            }
            if (is_punct(i + 1, '(')) {
                fail_function(t);
            }
            i = parse_path(i, out);
            if (is_punct(i, ',')) {
                after_comma = true;
                ++i;
                continue;
            }
            if (is_word(i, "FROM")) {
                return i + 1;
            }
            if (tokens_[i].kind == TokenKind::End) {
                fail("missing FROM clause", tokens_[i]);
            }
            fail("unexpected " + shown(tokens_[i]) + " after field " +
                     quote_for_message(out.fields.back().path) + "; expected ',' or FROM",
                 tokens_[i]);
        }
    }

    [[noreturn]] void fail_function(const Token &name) const {
        static constexpr std::string_view kAggregates[] = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN",
                                                           "MAX"};
        const std::string call = std::string(name.text) + "()";
        if (ascii_iequals(name.text, "FIELDS")) {
            fail("FIELDS() is not supported by Bulk API 2.0 queries; list the fields", name);
        }
        for (std::string_view a : kAggregates) {
            if (ascii_iequals(name.text, a)) {
                fail("aggregate function " + call + " is not supported by Bulk API 2.0 queries", name);
            }
        }
        fail("function " + call + " in the select list is not supported; select plain field paths", name);
    }

    std::size_t parse_path(std::size_t i, SoqlSelect &out) {
        SoqlField f;
        f.position = character_at(tokens_[i].offset);
        const std::size_t begin = tokens_[i].offset;
        std::size_t end = begin;
        for (;;) {
            const Token &t = tokens_[i];
            if (auto problem = field_name_error(t.text)) {
                fail(*problem, t);
            }
            f.parts.emplace_back(t.text);
            end = t.offset + t.text.size();
            ++i;
            if (!is_punct(i, '.')) {
                break;
            }
            // Only "A.B" with no spaces continues a path: refusing "Owner . Email" keeps `path` equal to the
            // header Salesforce writes for the column.
            const Token &dot = tokens_[i];
            const Token &part = tokens_[i + 1];
            if (part.kind != TokenKind::Word || is_word(i + 1, "FROM")) {
                fail("expected a field name after '.', found " + shown(part), part);
            }
            if (dot.offset != end || part.offset != end + 1) {
                fail("a field path must not contain spaces around '.'", dot);
            }
            ++i;
        }
        f.path = std::string(soql_.substr(begin, end - begin));
        f.column = soql_column_name(f.path);
        out.fields.push_back(std::move(f));
        return i;
    }

    // ---- FROM ----

    std::size_t parse_from(std::size_t i, SoqlSelect &out) {
        const Token &t = tokens_[i];
        if (t.kind != TokenKind::Word) {
            fail("expected an object name after FROM, found " + shown(t), t);
        }
        if (auto problem = object_name_error(t.text)) {
            fail(*problem, t);
        }
        out.object = std::string(t.text);
        ++i;
        const Token &after = tokens_[i];
        if (after.kind == TokenKind::End) {
            return i;
        }
        static constexpr std::string_view kClauses[] = {"WHERE", "WITH",   "USING", "ORDER", "LIMIT",
                                                        "FOR",   "UPDATE", "GROUP", "OFFSET"};
        for (std::string_view c : kClauses) {
            if (is_word(i, c)) {
                return i;
            }
        }
        if (is_punct(i, ',')) {
            fail(
                "FROM takes one object; relationship joins such as FROM Contact c, c.Account a are not "
                "supported",
                after);
        }
        if (after.kind == TokenKind::Word) {
            fail("unexpected " + shown(after) + " after FROM " + out.object +
                     "; object aliases are not supported, write field paths without them",
                 after);
        }
        fail("unexpected " + shown(after) + " after FROM " + out.object, after);
    }

    // ---- the rest, lexed only ----

    void scan_tail(std::size_t i, SoqlSelect &out) {
        int depth = 0;
        for (; tokens_[i].kind != TokenKind::End; ++i) {
            const Token &t = tokens_[i];
            if (is_punct(i, '(')) {
                ++depth;
            } else if (is_punct(i, ')')) {
                --depth;
            } else if (is_word(i, "GROUP") && is_word(i + 1, "BY")) {
                fail("GROUP BY is not supported by Bulk API 2.0 queries", t);
            } else if (is_word(i, "OFFSET") && tokens_[i + 1].kind == TokenKind::Number) {
                fail("OFFSET is not supported by Bulk API 2.0 queries", t);
            } else if (is_word(i, "TYPEOF")) {
                fail("TYPEOF is not supported by Bulk API 2.0 queries", t);
            } else if (depth == 0 && is_word(i, "WHERE")) {
                out.has_where = true;
            } else if (depth == 0 && is_word(i, "ORDER") && is_word(i + 1, "BY")) {
                out.has_order_by = true;
            } else if (depth == 0 && is_word(i, "LIMIT")) {
                out.has_limit = true;
            }
        }
    }

    // ---- select list checks ----

    static void check_columns(const SoqlSelect &out) {
        std::unordered_map<std::string, const SoqlField *> by_path;
        std::unordered_map<std::string, const SoqlField *> by_column;
        for (const SoqlField &f : out.fields) {
            const auto [p, path_is_new] = by_path.emplace(ascii_lowercase(f.path), &f);
            if (!path_is_new) {
                throw Error(ErrorKind::InvalidParameter, "field " + quote_for_message(f.path) +
                                                             " is selected twice (at characters " +
                                                             std::to_string(p->second->position) + " and " +
                                                             std::to_string(f.position) + ")");
            }
            const auto [c, column_is_new] = by_column.emplace(f.column, &f);
            if (!column_is_new) {
                throw Error(ErrorKind::InvalidParameter,
                            "fields " + quote_for_message(c->second->path) + " and " +
                                quote_for_message(f.path) + " both map to column " +
                                quote_for_message(f.column) + "; select only one");
            }
            if (f.column.size() > kMaxPgIdentifierBytes) {
                throw Error(ErrorKind::InvalidParameter,
                            "field " + quote_for_message(f.path, 200) + " maps to column name " +
                                quote_for_message(f.column, 200) + ", longer than PostgreSQL's " +
                                std::to_string(kMaxPgIdentifierBytes) + "-byte limit for names");
            }
        }
    }

    std::string_view soql_;
    std::vector<Token> tokens_;
};

}  // namespace

std::string soql_column_name(std::string_view field_path) {
    std::string out = ascii_lowercase(field_path);
    for (char &c : out) {
        if (c == '.') {
            c = '_';
        }
    }
    return out;
}

SoqlSelect parse_soql_select(std::string_view soql) {
    return Parser(soql).run();
}

}  // namespace sfb
