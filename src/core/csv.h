// Streaming CSV for Salesforce Bulk API 2.0: the writer that turns rows into upload files, the spool
// writer that cuts those files at a byte limit, and the reader for result files.
//
// Format decisions (docs/bulk-api-2.md §7–§8), in one place because every caller depends on them:
//
// Writer
//  - A field is quoted only when it contains the delimiter, '"', CR or LF; inner quotes are doubled.
//    Leading/trailing spaces are NOT a reason to quote: Salesforce does not trim values, so spaces are
//    data either way, and quoting them would only cost bytes on the hot path.
//  - Values are written exactly as given. An empty value stays an empty cell (Salesforce: "keep the
//    current value") and "#N/A" stays bare (Salesforce: "set null"); choosing between them is the
//    caller's business.
//  - Exception: a row made of one single empty field is written as `""`. Written bare it would be a
//    blank line, which readers commonly skip (and ours reports as a record with no fields).
//  - A row with no fields cannot be expressed in CSV and is rejected.
//  - No byte-order mark is ever written (Salesforce would make it part of the first column name).
//
// Reader
//  - Accepts LF and CRLF record ends, mixed freely, whatever the job declared; a UTF-8 BOM at the very
//    start of the stream is skipped; the last record may lack its line ending.
//  - Strict about quotes, because a mis-parsed result row would silently attach results to the wrong
//    record: a '"' inside an unquoted field, anything but delimiter/line end after a closing quote, and a
//    CR outside quotes that is not followed by LF are errors naming the line and record.
//  - A blank line is delivered as a record with zero fields; `""` is a record with one empty field. The
//    caller decides whether a blank line means anything (e.g. skip it, or reject it).
//  - Inside quotes every byte is kept as is, including CR and CRLF.
#pragma once
#include "core/core_only.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace sfb::csv {

// ---------------------------------------------------------------------------------------------------
// Dialect
// ---------------------------------------------------------------------------------------------------

// The six values of a Bulk API 2.0 job's `columnDelimiter`.
enum class Delimiter { Comma, Tab, Semicolon, Pipe, Caret, Backquote };
// The two values of a job's `lineEnding`.
enum class LineEnding { LF, CRLF };

char delimiter_char(Delimiter delimiter);
// "COMMA", "TAB", ... as sent in the job's `columnDelimiter`.
std::string_view salesforce_name(Delimiter delimiter);
// Accepts the Salesforce names, ignoring ASCII case (user options are typed by hand; the canonical
// upper-case name is what goes on the wire). Throws Error(InvalidParameter) listing the valid names.
Delimiter parse_delimiter(std::string_view name);

std::string_view line_ending_bytes(LineEnding line_ending);
// "LF" or "CRLF" as sent in the job's `lineEnding`.
std::string_view salesforce_name(LineEnding line_ending);
// Same rules as parse_delimiter.
LineEnding parse_line_ending(std::string_view name);

struct Format {
    Delimiter delimiter = Delimiter::Comma;
    LineEnding line_ending = LineEnding::LF;
};

// A malformed input file. Line and record numbers are 1-based; the header is record 1.
class ParseError : public Error {
  public:
    ParseError(const std::string &message, std::uint64_t line, std::uint64_t record)
        : Error(ErrorKind::DataException, message), line_(line), record_(record) {}
    std::uint64_t line() const noexcept { return line_; }
    std::uint64_t record() const noexcept { return record_; }

  private:
    std::uint64_t line_;
    std::uint64_t record_;
};

// ---------------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------------

// Encodes rows into one growing byte buffer that is reused between flushes, so encoding allocates
// nothing per field once the buffer has reached its working size.
//
//     encoder.add_field("K-1"); encoder.add_field("O\"Brien");
//     std::size_t n = encoder.finish_row();   // bytes of that row, line ending included
//     sink.write(encoder.buffer()); encoder.clear();
class RowEncoder {
  public:
    explicit RowEncoder(Format format = {});
    RowEncoder(const RowEncoder &) = delete;
    RowEncoder &operator=(const RowEncoder &) = delete;

    const Format &format() const noexcept { return format_; }

    // Inline: the spool writer calls this for every value of every row.
    void add_field(std::string_view value) {
        if (needs_quoting(value)) {
            add_quoted_field(value);
            return;
        }
        char *out = reserve(value.size() + 1);
        if (fields_in_row_++ > 0)
            *out++ = delimiter_;
        if (!value.empty())  // data() may be null then, which memcpy must not see
            std::memcpy(out, value.data(), value.size());
        size_ = static_cast<std::size_t>(out - data_.get()) + value.size();
    }
    // Appends the line ending and returns the exact encoded size of the row just finished. Throws
    // Error(Internal) for a row without fields.
    std::size_t finish_row();
    // Drops the fields added since the last finish_row().
    void discard_row();
    // Removes the row returned by the last finish_row() from the buffer (at most once per row).
    void drop_last_row();

    std::size_t fields_in_row() const noexcept { return fields_in_row_; }
    // Finished rows, followed by the unfinished one if a row is in progress.
    std::string_view buffer() const noexcept { return std::string_view(data_.get(), size_); }
    // The row returned by the last finish_row(); empty after clear().
    std::string_view last_row() const noexcept;
    // Forgets every buffered byte, an unfinished row included, but keeps the allocation.
    void clear();

    // True when `value` would be quoted by this encoder: it holds the delimiter, '"', CR or LF. Eight bytes
    // per step (a word compare per special byte) instead of a table lookup per byte.
    bool needs_quoting(std::string_view value) const noexcept {
        const char *p = value.data();
        std::size_t n = value.size();
        for (; n >= 8; p += 8, n -= 8) {
            std::uint64_t word;
            std::memcpy(&word, p, 8);
            if (has_byte(word, delimiter_word_) | has_byte(word, kQuoteWord) | has_byte(word, kCrWord) |
                has_byte(word, kLfWord))
                return true;
        }
        for (; n > 0; ++p, --n) {
            if (special_[static_cast<unsigned char>(*p)])
                return true;
        }
        return false;
    }

  private:
    static constexpr std::uint64_t kOnes = 0x0101010101010101ull;
    static constexpr std::uint64_t kQuoteWord = kOnes * '"';
    static constexpr std::uint64_t kCrWord = kOnes * '\r';
    static constexpr std::uint64_t kLfWord = kOnes * '\n';
    // Non-zero when some byte of `word` equals the byte repeated in `pattern` (exact: the classic
    // "has a zero byte" test on word ^ pattern).
    static std::uint64_t has_byte(std::uint64_t word, std::uint64_t pattern) noexcept {
        const std::uint64_t v = word ^ pattern;
        return (v - kOnes) & ~v & (kOnes * 0x80);
    }
    // Where `bytes` more bytes can be written; the caller advances size_.
    char *reserve(std::size_t bytes) {
        if (capacity_ - size_ < bytes)
            grow(bytes);
        return data_.get() + size_;
    }
    void grow(std::size_t bytes);
    void add_quoted_field(std::string_view value);
    void append(std::string_view bytes);

    Format format_;
    char delimiter_;
    std::uint64_t delimiter_word_;
    std::string_view line_ending_;
    bool special_[256];  // bytes that force quoting
    // The encoded bytes: a plain buffer rather than a std::string, so that writing a field is a memcpy
    // after one capacity check, not a library call per append.
    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::size_t row_start_ = 0;
    std::size_t last_row_start_ = 0;
    std::size_t last_row_size_ = 0;
    std::size_t fields_in_row_ = 0;
};

// Where encoded bytes go. Implementations throw on failure; a short write is never silent.
class ByteSink {
  public:
    virtual ~ByteSink() = default;
    virtual void write(const char *data, std::size_t size) = 0;
    void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
    // Completes the file: everything written must be durable or have been handed on when this returns.
    virtual void close() {}
};

// Collects everything in memory; for tests and small payloads.
class StringSink : public ByteSink {
  public:
    using ByteSink::write;
    void write(const char *data, std::size_t size) override { data_.append(data, size); }
    void close() override { closed_ = true; }
    const std::string &data() const noexcept { return data_; }
    bool closed() const noexcept { return closed_; }

  private:
    std::string data_;
    bool closed_ = false;
};

// A POSIX file with its own write buffer. close() flushes, fsyncs and closes: a spool file is only
// recorded as ready after it is closed, and the worker may read it after a crash, so it must be on disk.
// I/O failures throw Error(Internal) naming the path and errno text.
//
// On Linux the kernel is asked to start writing back every kWritebackBytes as the file grows
// (sync_file_range, as PostgreSQL's own writeback flushing does), so the disk works while rows are still
// being encoded and the fsync in close() waits only for the tail. A hint only: its errors are ignored,
// and fsync reports any write-back failure.
class FdFileSink : public ByteSink {
  public:
    static constexpr std::size_t kDefaultBufferSize = 64 * 1024;
    static constexpr std::uint64_t kWritebackBytes = 4 * 1024 * 1024;

    // Creates a new file with mode 0600 (spool files hold user data). Fails if the path exists: spool
    // file names are unique per job chunk, so an existing file means two writers collided.
    static std::unique_ptr<FdFileSink> create_new(const std::string &path,
                                                  std::size_t buffer_size = kDefaultBufferSize);
    // Adopts an open, writable descriptor; `name` is only used in error messages.
    FdFileSink(int fd, std::string name, std::size_t buffer_size = kDefaultBufferSize);
    // Closes without flushing or reporting errors (destructors must not throw): call close() to keep the
    // data.
    ~FdFileSink() override;
    FdFileSink(const FdFileSink &) = delete;
    FdFileSink &operator=(const FdFileSink &) = delete;

    using ByteSink::write;
    void write(const char *data, std::size_t size) override;
    void flush();
    void sync();  // flush + fsync
    void close() override;

    std::uint64_t bytes_written() const noexcept { return bytes_written_; }  // including buffered bytes
    bool is_open() const noexcept { return fd_ >= 0; }

  private:
    void write_fully(const char *data, std::size_t size);
    void start_writeback();
    [[noreturn]] void fail(const char *what, int errno_value) const;

    int fd_;
    std::string name_;
    std::vector<char> buffer_;
    std::size_t buffered_ = 0;
    std::uint64_t bytes_written_ = 0;
    std::uint64_t bytes_in_file_ = 0;      // handed to write(2)
    std::uint64_t writeback_started_ = 0;  // bytes already given to the kernel to write back
};

// The byte count and row count of one file produced by SpoolWriter.
struct SpoolFileInfo {
    std::size_t index = 0;  // 0-based, in creation order
    std::uint64_t bytes = 0;
    std::uint64_t rows = 0;  // data rows, without the header
};

// Thrown when a header plus one row cannot fit in a file of the configured size.
class RowTooLargeError : public Error {
  public:
    using Error::Error;
};

// Streams rows into files of at most `max_file_bytes` each. Every file starts with the header row, and a
// row is never split: when the next row does not fit, the current file is closed and the next one opened
// through the factory. Files are opened lazily, so no rows means no files. Byte counts are exact (the
// header counts towards every file).
//
// Not thread-safe. The writer performs no loop of its own, so the caller checks for interrupts between
// rows.
class SpoolWriter {
  public:
    using SinkFactory = std::function<std::unique_ptr<ByteSink>(std::size_t file_index)>;
    // Pending bytes are handed to the sink once they reach this size; it bounds the writer's own buffer.
    static constexpr std::size_t kFlushThreshold = 64 * 1024;

    // Throws RowTooLargeError when the encoded header alone leaves no room for a row.
    SpoolWriter(Format format, const std::vector<std::string> &header, std::uint64_t max_file_bytes,
                SinkFactory next_file);
    ~SpoolWriter();
    SpoolWriter(const SpoolWriter &) = delete;
    SpoolWriter &operator=(const SpoolWriter &) = delete;

    void add_field(std::string_view value) { encoder_.add_field(value); }
    // Places the finished row in the current file or a new one. Throws Error(Internal) when the field
    // count differs from the header's, RowTooLargeError when header plus row exceed the limit; in both
    // cases the row is dropped and the writer stays usable. An exception from a sink or the factory leaves
    // the files in an unknown state: every later call throws, and the caller must discard all files.
    void finish_row();
    // Flushes and closes the last file. Call exactly once, after the last row.
    void finish();

    std::uint64_t header_bytes() const noexcept { return header_.size(); }
    std::uint64_t total_rows() const noexcept { return total_rows_; }
    // Every file opened so far, the current one last (its numbers grow until finish()).
    const std::vector<SpoolFileInfo> &files() const noexcept { return files_; }

  private:
    void check_usable() const;
    void flush_pending();
    void start_next_file();

    RowEncoder encoder_;
    std::size_t column_count_;
    std::string header_;
    std::uint64_t max_file_bytes_;
    SinkFactory next_file_;
    std::unique_ptr<ByteSink> sink_;
    std::vector<SpoolFileInfo> files_;
    std::uint64_t total_rows_ = 0;
    std::uint64_t rows_offered_ = 0;  // including rejected rows
    bool finished_ = false;
    bool broken_ = false;  // a sink or the factory threw; the files are in an unknown state
};

// ---------------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------------

struct ReaderOptions {
    Delimiter delimiter = Delimiter::Comma;
    // Upper bound on one record's decoded bytes; protects memory against a runaway quote in a huge file.
    // Salesforce allows 400,000 characters per record, i.e. at most ~1.6 MB of UTF-8.
    std::size_t max_record_bytes = 16 * 1024 * 1024;
};

// Push parser: feed() byte chunks split anywhere, receive each complete record through the callback.
// Field views point into the reader's buffer and are valid only during the callback. Memory grows with
// the longest record, never with the input. After any exception (a parse error or one thrown by the
// callback) the reader refuses further input.
class Reader {
  public:
    using RecordCallback = std::function<void(const std::vector<std::string_view> &fields)>;

    Reader(ReaderOptions options, RecordCallback on_record);

    void feed(const char *data, std::size_t size);
    void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }
    // Delivers a final record that lacks its line ending; throws on an unterminated quoted field.
    void finish();

    // During the callback: the record being delivered (1-based) and the line it started on. Afterwards:
    // the number of records delivered so far.
    std::uint64_t record_number() const noexcept { return record_number_; }
    std::uint64_t record_line() const noexcept { return record_line_; }

  private:
    enum class State : unsigned char {
        RecordStart,    // nothing of the current record seen yet
        FieldStart,     // just after a delimiter
        Unquoted,       // inside a bare field
        Quoted,         // inside quotes
        QuoteInQuoted,  // saw '"' inside quotes: closing quote or first half of ""
        CarriageReturn  // saw CR outside quotes; only LF may follow
    };

    void consume(const char *data, std::size_t size);
    void end_field();
    void end_record();
    void append(const char *data, std::size_t size);
    [[noreturn]] void fail(const std::string &what, std::uint64_t line);

    ReaderOptions options_;
    char delimiter_;
    RecordCallback on_record_;
    bool special_unquoted_[256];  // bytes that end a run inside a bare field

    State state_ = State::RecordStart;
    std::string record_;  // decoded bytes of the fields seen so far, back to back
    std::vector<std::size_t> field_ends_;
    std::vector<std::string_view> fields_;
    std::uint64_t line_ = 1;
    std::uint64_t record_line_ = 1;
    std::uint64_t record_number_ = 0;
    std::uint64_t quote_line_ = 0;  // where the open quoted field began
    std::size_t bom_bytes_seen_ = 0;
    bool bom_decided_ = false;
    bool failed_ = false;
    bool finished_ = false;
};

}  // namespace sfb::csv
