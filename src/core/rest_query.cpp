#include "core/rest_query.h"

#include "core/error.h"
#include "core/text_util.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

namespace sfb {

namespace {

using json = nlohmann::json;

constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
constexpr const char *kWhat = "REST query answer";

// The selected paths as a tree of member names. Node 0 is the record; a leaf carries the output columns
// it fills, an inner node (a relationship) its children. No node is both (checked when building).
struct Node {
    std::string name;  // as in the SELECT, for messages
    std::size_t parent = kNone;
    std::size_t position = 0;  // index in the parent's `children`
    std::vector<std::size_t> columns;
    std::vector<std::size_t> children;
    std::unordered_map<std::string, std::size_t> by_folded_name;  // lower-case name -> node
    std::size_t seen_in_row = 0;                                  // 1 + the row it last matched in
};

class PathTree {
  public:
    explicit PathTree(const std::vector<SoqlPath> &paths) {
        nodes_.emplace_back();
        for (std::size_t column = 0; column < paths.size(); ++column) {
            const SoqlPath &path = paths[column];
            if (path.empty()) {
                throw Error(ErrorKind::InvalidParameter,
                            "REST query column " + std::to_string(column + 1) + " has an empty path");
            }
            std::size_t at = 0;
            for (const std::string &name : path) {
                if (name.empty()) {
                    throw Error(
                        ErrorKind::InvalidParameter,
                        "REST query column " + std::to_string(column + 1) + " has an empty name in its path");
                }
                if (!nodes_[at].columns.empty()) {
                    prefix_error(column);
                }
                at = child(at, name);
            }
            if (!nodes_[at].children.empty()) {
                prefix_error(column);
            }
            nodes_[at].columns.push_back(column);
        }
    }

    Node &operator[](std::size_t i) { return nodes_[i]; }
    const Node &operator[](std::size_t i) const { return nodes_[i]; }

    // The child of `parent` called `key` (ASCII case-insensitively), or kNone. Salesforce sends fields in
    // SELECT order, so the child after the previous match (`*hint`) is tried before the hash lookup.
    std::size_t find(std::size_t parent, const std::string &key, std::size_t *hint) {
        const Node &p = nodes_[parent];
        if (*hint < p.children.size() && ascii_iequals(nodes_[p.children[*hint]].name, key)) {
            return p.children[(*hint)++];
        }
        folded_.assign(key);
        for (char &c : folded_) {
            c = ascii_lower(c);
        }
        const auto it = p.by_folded_name.find(folded_);
        if (it == p.by_folded_name.end()) {
            return kNone;
        }
        *hint = nodes_[it->second].position + 1;
        return it->second;
    }

  private:
    std::size_t child(std::size_t parent, const std::string &name) {
        std::string folded = ascii_lowercase(name);
        const auto it = nodes_[parent].by_folded_name.find(folded);
        if (it != nodes_[parent].by_folded_name.end()) {
            return it->second;
        }
        const std::size_t index = nodes_.size();
        Node n;
        n.name = name;
        n.parent = parent;
        n.position = nodes_[parent].children.size();
        nodes_.push_back(std::move(n));
        nodes_[parent].children.push_back(index);
        nodes_[parent].by_folded_name.emplace(std::move(folded), index);
        return index;
    }

    [[noreturn]] static void prefix_error(std::size_t column) {
        throw Error(
            ErrorKind::InvalidParameter,
            "REST query column " + std::to_string(column + 1) +
                " selects a relationship that another column's path goes through, or goes through one "
                "that another column selects");
    }

    std::vector<Node> nodes_;
    std::string folded_;  // scratch for find()
};

// A JSON string, quoted and escaped by nlohmann's own writer (the value came out of its parser, so it is
// valid UTF-8).
void append_json_string(std::string &out, const std::string &s) {
    out += nlohmann::json(s).dump();
}

// The token text of a JSON number with a fraction or exponent. nlohmann's lexer stores the locale's decimal
// point in place of '.' (PostgreSQL runs with LC_NUMERIC=C, but a core test need not); every other byte of
// a JSON number is one of "0123456789+-eE".
std::string number_token(const std::string &token) {
    std::string out = token;
    for (char &c : out) {
        if ((c < '0' || c > '9') && c != '-' && c != '+' && c != 'e' && c != 'E') {
            c = '.';
        }
    }
    return out;
}

enum class TopMember { None, TotalSize, Done, NextRecordsUrl, Records };

// The SAX handler: a stack of the containers being read, plus two modes for whole values: skipping one (not
// selected, "attributes", unknown top-level members) and capturing one as compact JSON (an object or array
// at the end of a path).
class PageReader {
  public:
    PageReader(std::string_view body, const std::vector<SoqlPath> &paths)
        : body_size_(body.size()), tree_(paths), width_(paths.size()) {}

    RestQueryPage finish() {
        if (!seen_records_) {
            fail("lacks the required member \"records\"");
        }
        if (!seen_done_) {
            fail("lacks the required member \"done\"");
        }
        if (page_.done) {
            page_.next_records_url.clear();
        } else if (page_.next_records_url.empty()) {
            fail("says done is false but has no nextRecordsUrl");
        } else if (!is_service_path(page_.next_records_url)) {
            fail("has a nextRecordsUrl that is not a path below /services/data/");
        }
        return std::move(page_);
    }

    // ---- the nlohmann SAX interface ----

    bool null() {
        if (skip_depth_ > 0) {
            return true;
        }
        if (capture_depth_ > 0) {
            capture_separator();
            capture_ += "null";
            return true;
        }
        return scalar("null", true, [] { return std::string(); });
    }

    bool boolean(bool v) {
        const char *text = v ? "true" : "false";
        if (skip_depth_ > 0) {
            return true;
        }
        if (capture_depth_ > 0) {
            capture_separator();
            capture_ += text;
            return true;
        }
        if (at_top_member(TopMember::Done)) {
            page_.done = v;
            seen_done_ = true;
            top_member_ = TopMember::None;
            return true;
        }
        return scalar("a boolean", false, [text] { return std::string(text); });
    }

    bool number_integer(json::number_integer_t v) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (at_top_member(TopMember::TotalSize)) {
            if (v < 0) {
                fail("has a totalSize that is not a non-negative integer");
            }
            page_.total_size = v;
            top_member_ = TopMember::None;
            return true;
        }
        return number(std::to_string(v));
    }

    bool number_unsigned(json::number_unsigned_t v) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (at_top_member(TopMember::TotalSize)) {
            if (v > static_cast<json::number_unsigned_t>(std::numeric_limits<long long>::max())) {
                fail("has a totalSize that is not a non-negative integer");
            }
            page_.total_size = static_cast<long long>(v);
            top_member_ = TopMember::None;
            return true;
        }
        return number(std::to_string(v));
    }

    bool number_float(json::number_float_t v, const std::string &token) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (at_top_member(TopMember::TotalSize)) {
            // Some emulators print 18.0 for an integer (describe.cpp accepts it likewise).
            if (!(v >= 0 && v < 9e15 && v == std::floor(v))) {
                fail("has a totalSize that is not a non-negative integer");
            }
            page_.total_size = static_cast<long long>(v);
            top_member_ = TopMember::None;
            return true;
        }
        return number(number_token(token));
    }

    bool string(std::string &v) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (capture_depth_ > 0) {
            check_no_nul(v, capture_node_);
            capture_separator();
            append_json_string(capture_, v);
            return true;
        }
        if (at_top_member(TopMember::NextRecordsUrl)) {
            page_.next_records_url = std::move(v);
            top_member_ = TopMember::None;
            return true;
        }
        return scalar("a string", false, [&v] { return std::move(v); });
    }

    bool binary(json::binary_t &) { return true; }  // not produced by the JSON parser

    bool start_object(std::size_t) { return start_container('{', "an object"); }
    bool start_array(std::size_t) { return start_container('[', "an array"); }
    bool end_object() { return end_container('}'); }
    bool end_array() { return end_container(']'); }

    bool key(std::string &k) {
        if (skip_depth_ > 0) {
            return true;
        }
        if (capture_depth_ > 0) {
            check_no_nul(k, capture_node_);
            capture_separator();
            append_json_string(capture_, k);
            capture_ += ':';
            return true;
        }
        Frame &f = stack_.back();
        if (f.in == In::Top) {
            top_member_ = top_member(k);
            return true;
        }
        // In a record or a parent record.
        if (k == "attributes") {
            pending_ = kNone;
            return true;
        }
        pending_ = tree_.find(f.node, k, &f.hint);
        if (pending_ != kNone) {
            Node &n = tree_[pending_];
            if (n.seen_in_row == page_.rows.size()) {
                fail(where(f.node) + " has the member " + member_name(pending_) + " twice");
            }
            n.seen_in_row = page_.rows.size();
        }
        return true;
    }

    [[noreturn]] bool parse_error(std::size_t position, const std::string &,
                                  const nlohmann::detail::exception &) {
        // nlohmann's message quotes the text around the error; ours gives the place only. `position` counts
        // the bytes read, the end of input as one more: the error is at the position-th byte (1-based).
        std::string msg = std::string(kWhat) + " is not valid JSON: ";
        if (position > body_size_) {
            msg += "it ends early, after " + std::to_string(body_size_) + " bytes";
        } else {
            msg += "syntax error at byte " + std::to_string(position);
        }
        if (stack_.size() > 2) {
            msg += " (in records[" + std::to_string(page_.rows.size() - 1) + "])";
        }
        throw Error(ErrorKind::ExternalService, msg);
    }

  private:
    enum class In { Top, Records, Object };
    struct Frame {
        In in;
        std::size_t node;  // In::Object: the tree node of this (parent) record
        std::size_t hint;  // In::Object: the child expected next
    };

    In in() const { return stack_.back().in; }

    // Whether the value now read is that of top-level member `m` (outside skip and capture modes).
    bool at_top_member(TopMember m) const {
        return capture_depth_ == 0 && !stack_.empty() && in() == In::Top && top_member_ == m;
    }

    TopMember top_member(const std::string &k) {
        TopMember m = TopMember::None;
        bool *seen = nullptr;
        if (k == "totalSize") {
            m = TopMember::TotalSize;
            seen = &seen_total_size_;
        } else if (k == "done") {
            m = TopMember::Done;
            seen = &seen_done_member_;
        } else if (k == "nextRecordsUrl") {
            m = TopMember::NextRecordsUrl;
            seen = &seen_next_;
        } else if (k == "records") {
            m = TopMember::Records;
            seen = &seen_records_member_;
        } else {
            return TopMember::None;
        }
        if (*seen) {
            fail("has the member \"" + k + "\" twice");
        }
        *seen = true;
        return m;
    }

    // A scalar (`type` names it for messages) outside skip and capture modes; make_text gives its text.
    template <typename MakeText>
    bool scalar(const char *type, bool is_null, MakeText make_text) {
        if (stack_.empty()) {
            fail("is not a JSON object");
        }
        switch (in()) {
            case In::Top:
                if (!is_null) {
                    top_scalar(type);
                }
                top_member_ = TopMember::None;
                return true;
            case In::Records:
                fail(record_name(page_.rows.size()) + " is " + type + ", not a JSON object");
            case In::Object:
                break;
        }
        const std::size_t target = std::exchange(pending_, kNone);
        if (target == kNone) {
            return true;
        }
        if (!tree_[target].children.empty()) {
            if (is_null) {
                return true;  // no parent: every column below stays NULL
            }
            not_a_parent(target, type);
        }
        if (is_null) {
            return true;
        }
        std::string text = make_text();
        check_no_nul(text, target);
        store(target, std::move(text));
        return true;
    }

    bool number(std::string text) {
        if (capture_depth_ > 0) {
            capture_separator();
            capture_ += text;
            return true;
        }
        return scalar("a number", false, [&text] { return std::move(text); });
    }

    // A scalar of the wrong type for a known top-level member (null counts as absent and is not checked).
    void top_scalar(const char *type) {
        switch (top_member_) {
            case TopMember::TotalSize:
                fail(std::string("has a totalSize that is ") + type + ", not a non-negative integer");
            case TopMember::Done:
                fail(std::string("has a done that is ") + type + ", not a boolean");
            case TopMember::NextRecordsUrl:
                fail(std::string("has a nextRecordsUrl that is ") + type + ", not a string");
            case TopMember::Records:
                fail(std::string("has a records that is ") + type + ", not an array");
            case TopMember::None:
                break;
        }
    }

    bool start_container(char open, const char *type) {
        if (skip_depth_ > 0) {
            ++skip_depth_;
            return true;
        }
        if (capture_depth_ > 0) {
            capture_separator();
            capture_ += open;
            ++capture_depth_;
            return true;
        }
        if (stack_.empty()) {
            if (open != '{') {
                fail("is not a JSON object");
            }
            stack_.push_back(Frame{In::Top, 0, 0});
            return true;
        }
        switch (in()) {
            case In::Top: {
                const TopMember m = std::exchange(top_member_, TopMember::None);
                if (m == TopMember::None) {
                    skip_depth_ = 1;
                } else if (m == TopMember::Records && open == '[') {
                    seen_records_ = true;
                    stack_.push_back(Frame{In::Records, 0, 0});
                } else {
                    top_member_ = m;
                    top_scalar(type);
                }
                return true;
            }
            case In::Records:
                if (open != '{') {
                    fail(record_name(page_.rows.size()) + " is " + type + ", not a JSON object");
                }
                page_.rows.emplace_back(width_);
                stack_.push_back(Frame{In::Object, 0, 0});
                return true;
            case In::Object:
                break;
        }
        const std::size_t target = std::exchange(pending_, kNone);
        if (target == kNone) {
            skip_depth_ = 1;
        } else if (tree_[target].children.empty()) {
            capture_node_ = target;
            capture_.assign(1, open);
            capture_depth_ = 1;
        } else if (open == '{') {
            stack_.push_back(Frame{In::Object, target, 0});
        } else {
            not_a_parent(target, type);
        }
        return true;
    }

    bool end_container(char close) {
        if (skip_depth_ > 0) {
            --skip_depth_;
            return true;
        }
        if (capture_depth_ > 0) {
            capture_ += close;
            if (--capture_depth_ == 0) {
                store(capture_node_, std::string(capture_));
            }
            return true;
        }
        stack_.pop_back();
        pending_ = kNone;
        return true;
    }

    void capture_separator() {
        const char last = capture_.back();
        if (last != '{' && last != '[' && last != ':') {
            capture_ += ',';
        }
    }

    void store(std::size_t node, std::string text) {
        std::vector<std::optional<std::string>> &row = page_.rows.back();
        const std::vector<std::size_t> &columns = tree_[node].columns;
        for (std::size_t i = 0; i + 1 < columns.size(); ++i) {
            row[columns[i]] = text;
        }
        row[columns.back()] = std::move(text);
    }

    void check_no_nul(const std::string &s, std::size_t node) const {
        if (std::memchr(s.data(), '\0', s.size()) != nullptr) {
            throw Error(ErrorKind::DataException,
                        std::string(kWhat) + " " + where(node) +
                            " holds the character U+0000, which PostgreSQL cannot store");
        }
    }

    static bool is_service_path(const std::string &url) {
        if (url.rfind("/services/data/", 0) != 0 || url.find("..") != std::string::npos) {
            return false;
        }
        for (const char c : url) {
            if (c <= ' ' || c > '~') {
                return false;
            }
        }
        return true;
    }

    // "records[3]".
    static std::string record_name(std::size_t index) { return "records[" + std::to_string(index) + "]"; }

    // "records[3].Owner.Manager" for a tree node (names as in the SELECT), "records[3]" for the record.
    std::string where(std::size_t node) const {
        std::string path;
        for (std::size_t n = node; n != 0 && n != kNone; n = tree_[n].parent) {
            path.insert(0, "." + tree_[n].name);
        }
        return record_name(page_.rows.empty() ? 0 : page_.rows.size() - 1) + path;
    }

    std::string member_name(std::size_t node) const { return "\"" + tree_[node].name + "\""; }

    [[noreturn]] void not_a_parent(std::size_t node, const char *type) const {
        fail(where(node) + " is " + type + ", not a parent record (a JSON object) or null");
    }

    [[noreturn]] static void fail(const std::string &what) {
        throw Error(ErrorKind::ExternalService, std::string(kWhat) + " " + what);
    }

    std::size_t body_size_;
    PathTree tree_;
    std::size_t width_;
    RestQueryPage page_;
    std::vector<Frame> stack_;
    TopMember top_member_ = TopMember::None;
    std::size_t pending_ = kNone;  // In::Object: the node the current member's value goes to, or kNone
    int skip_depth_ = 0;
    int capture_depth_ = 0;
    std::size_t capture_node_ = kNone;
    std::string capture_;
    bool seen_total_size_ = false, seen_done_member_ = false, seen_next_ = false,
         seen_records_member_ = false;
    bool seen_done_ = false;     // a boolean done was read
    bool seen_records_ = false;  // a records array was read
};

}  // namespace

RestQueryPage parse_rest_query_page(std::string_view json_body, const std::vector<SoqlPath> &paths) {
    PageReader reader(json_body, paths);
    json::sax_parse(json_body.data(), json_body.data() + json_body.size(), &reader);
    return reader.finish();
}

}  // namespace sfb
