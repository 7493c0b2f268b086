#include "core/csv.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace sfb::csv {

namespace {

struct DelimiterEntry {
    Delimiter delimiter;
    char byte;
    std::string_view name;
};

constexpr DelimiterEntry kDelimiters[] = {
    {Delimiter::Comma, ',', "COMMA"},         {Delimiter::Tab, '\t', "TAB"},
    {Delimiter::Semicolon, ';', "SEMICOLON"}, {Delimiter::Pipe, '|', "PIPE"},
    {Delimiter::Caret, '^', "CARET"},         {Delimiter::Backquote, '`', "BACKQUOTE"},
};

const DelimiterEntry &entry_for(Delimiter delimiter) {
    for (const auto &entry : kDelimiters) {
        if (entry.delimiter == delimiter) {
            return entry;
        }
    }
    throw Error(ErrorKind::Internal,
                "invalid Delimiter value " + std::to_string(static_cast<int>(delimiter)));
}

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

// User text ends up in an error message: cap it so a pasted blob does not become a megabyte-long error.
std::string quoted_for_message(std::string_view text) {
    constexpr std::size_t kMaxShown = 64;
    std::string shown = "\"";
    shown.append(text.substr(0, kMaxShown));
    shown += text.size() > kMaxShown ? "...\"" : "\"";
    return shown;
}

constexpr char kBom[3] = {'\xEF', '\xBB', '\xBF'};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Dialect
// ---------------------------------------------------------------------------------------------------

char delimiter_char(Delimiter delimiter) {
    return entry_for(delimiter).byte;
}

std::string_view salesforce_name(Delimiter delimiter) {
    return entry_for(delimiter).name;
}

Delimiter parse_delimiter(std::string_view name) {
    for (const auto &entry : kDelimiters) {
        if (equals_ignoring_ascii_case(name, entry.name)) {
            return entry.delimiter;
        }
    }
    throw Error(ErrorKind::InvalidParameter,
                "unknown column delimiter " + quoted_for_message(name) +
                    "; expected one of COMMA, TAB, SEMICOLON, PIPE, CARET, BACKQUOTE");
}

std::string_view line_ending_bytes(LineEnding line_ending) {
    switch (line_ending) {
        case LineEnding::LF:
            return "\n";
        case LineEnding::CRLF:
            return "\r\n";
    }
    throw Error(ErrorKind::Internal,
                "invalid LineEnding value " + std::to_string(static_cast<int>(line_ending)));
}

std::string_view salesforce_name(LineEnding line_ending) {
    switch (line_ending) {
        case LineEnding::LF:
            return "LF";
        case LineEnding::CRLF:
            return "CRLF";
    }
    throw Error(ErrorKind::Internal,
                "invalid LineEnding value " + std::to_string(static_cast<int>(line_ending)));
}

LineEnding parse_line_ending(std::string_view name) {
    if (equals_ignoring_ascii_case(name, "LF")) {
        return LineEnding::LF;
    }
    if (equals_ignoring_ascii_case(name, "CRLF")) {
        return LineEnding::CRLF;
    }
    throw Error(ErrorKind::InvalidParameter,
                "unknown line ending " + quoted_for_message(name) + "; expected one of LF, CRLF");
}

// ---------------------------------------------------------------------------------------------------
// RowEncoder
// ---------------------------------------------------------------------------------------------------

RowEncoder::RowEncoder(Format format)
    : format_(format),
      delimiter_(delimiter_char(format.delimiter)),
      delimiter_word_(kOnes * static_cast<unsigned char>(delimiter_)),
      line_ending_(line_ending_bytes(format.line_ending)) {
    std::fill(std::begin(special_), std::end(special_), false);
    special_[static_cast<unsigned char>(delimiter_)] = true;
    special_[static_cast<unsigned char>('"')] = true;
    special_[static_cast<unsigned char>('\r')] = true;
    special_[static_cast<unsigned char>('\n')] = true;
}

void RowEncoder::grow(std::size_t bytes) {
    // Doubling keeps appends amortised O(1); the spool writer flushes at a fixed size, so the buffer
    // settles at about that size plus the largest row.
    std::size_t capacity = std::max<std::size_t>(capacity_ * 2, 256);
    capacity = std::max(capacity, size_ + bytes);
    std::unique_ptr<char[]> data(new char[capacity]);
    if (size_ > 0)
        std::memcpy(data.get(), data_.get(), size_);
    data_ = std::move(data);
    capacity_ = capacity;
}

void RowEncoder::append(std::string_view bytes) {
    char *out = reserve(bytes.size());
    if (!bytes.empty())
        std::memcpy(out, bytes.data(), bytes.size());
    size_ += bytes.size();
}

void RowEncoder::add_quoted_field(std::string_view value) {
    const std::size_t quotes = static_cast<std::size_t>(std::count(value.begin(), value.end(), '"'));
    // delimiter, two quotes, the value and a second copy of each inner quote
    char *out = reserve(value.size() + quotes + 3);
    if (fields_in_row_++ > 0)
        *out++ = delimiter_;
    *out++ = '"';
    const char *p = value.data();
    const char *const end = p + value.size();
    for (;;) {
        const char *quote = static_cast<const char *>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
        const char *stop = quote ? quote + 1 : end;  // up to and including the quote
        std::memcpy(out, p, static_cast<std::size_t>(stop - p));
        out += stop - p;
        if (!quote)
            break;
        *out++ = '"';  // ... then write it a second time
        p = stop;
    }
    *out++ = '"';
    size_ = static_cast<std::size_t>(out - data_.get());
}

std::size_t RowEncoder::finish_row() {
    if (fields_in_row_ == 0) {
        throw Error(ErrorKind::Internal, "a CSV row needs at least one field");
    }
    if (fields_in_row_ == 1 && size_ == row_start_) {
        // One empty field written bare is a blank line; see the header comment.
        append("\"\"");
    }
    append(line_ending_);
    last_row_start_ = row_start_;
    last_row_size_ = size_ - row_start_;
    row_start_ = size_;
    fields_in_row_ = 0;
    return last_row_size_;
}

void RowEncoder::discard_row() {
    size_ = row_start_;
    fields_in_row_ = 0;
}

void RowEncoder::drop_last_row() {
    if (fields_in_row_ != 0 || last_row_size_ == 0 || last_row_start_ + last_row_size_ != size_) {
        throw Error(ErrorKind::Internal, "RowEncoder::drop_last_row called without a last row at the end");
    }
    size_ = last_row_start_;
    row_start_ = last_row_start_;
    last_row_size_ = 0;
}

std::string_view RowEncoder::last_row() const noexcept {
    return buffer().substr(last_row_start_, last_row_size_);
}

void RowEncoder::clear() {
    size_ = 0;
    row_start_ = 0;
    last_row_start_ = 0;
    last_row_size_ = 0;
    fields_in_row_ = 0;
}

// ---------------------------------------------------------------------------------------------------
// FdFileSink
// ---------------------------------------------------------------------------------------------------

std::unique_ptr<FdFileSink> FdFileSink::create_new(const std::string &path, std::size_t buffer_size) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int saved = errno;
        throw Error(ErrorKind::Internal,
                    "could not create file \"" + path + "\": " + std::system_category().message(saved));
    }
    return std::make_unique<FdFileSink>(fd, path, buffer_size);
}

FdFileSink::FdFileSink(int fd, std::string name, std::size_t buffer_size)
    : fd_(fd), name_(std::move(name)), buffer_(buffer_size) {}

FdFileSink::~FdFileSink() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

void FdFileSink::fail(const char *what, int errno_value) const {
    throw Error(ErrorKind::Internal, std::string("could not ") + what + " file \"" + name_ +
                                         "\": " + std::system_category().message(errno_value));
}

void FdFileSink::write(const char *data, std::size_t size) {
    if (fd_ < 0) {
        throw Error(ErrorKind::Internal, "write to closed file \"" + name_ + "\"");
    }
    if (size == 0) {
        return;  // data may be null then, which memcpy must not see
    }
    if (buffered_ + size > buffer_.size()) {
        flush();
    }
    if (size >= buffer_.size()) {
        // Large writes skip the buffer: copying them would only add a memcpy.
        write_fully(data, size);
    } else {
        std::memcpy(buffer_.data() + buffered_, data, size);
        buffered_ += size;
    }
    bytes_written_ += size;
}

void FdFileSink::write_fully(const char *data, std::size_t size) {
    while (size > 0) {
        ssize_t written = ::write(fd_, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("write to", errno);
        }
        if (written == 0) {
            fail("write to", ENOSPC);
        }
        data += written;
        size -= static_cast<std::size_t>(written);
        bytes_in_file_ += static_cast<std::uint64_t>(written);
    }
    if (bytes_in_file_ - writeback_started_ >= kWritebackBytes) {
        start_writeback();
    }
}

void FdFileSink::start_writeback() {
#if defined(__linux__)
    // Asynchronous: SYNC_FILE_RANGE_WRITE queues the range for writing and returns.
    (void)::sync_file_range(fd_, static_cast<off_t>(writeback_started_),
                            static_cast<off_t>(bytes_in_file_ - writeback_started_), SYNC_FILE_RANGE_WRITE);
#endif
    writeback_started_ = bytes_in_file_;
}

void FdFileSink::flush() {
    if (fd_ < 0 || buffered_ == 0) {
        return;
    }
    // Forget the buffer before writing: after a failed write its content is in an unknown state anyway.
    std::size_t pending = buffered_;
    buffered_ = 0;
    write_fully(buffer_.data(), pending);
}

void FdFileSink::sync() {
    if (fd_ < 0) {
        throw Error(ErrorKind::Internal, "sync of closed file \"" + name_ + "\"");
    }
    flush();
    if (::fsync(fd_) != 0) {
        fail("fsync", errno);
    }
}

void FdFileSink::close() {
    if (fd_ < 0) {
        return;
    }
    sync();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0 && errno != EINTR) {
        fail("close", errno);
    }
}

// ---------------------------------------------------------------------------------------------------
// SpoolWriter
// ---------------------------------------------------------------------------------------------------

SpoolWriter::SpoolWriter(Format format, const std::vector<std::string> &header, std::uint64_t max_file_bytes,
                         SinkFactory next_file)
    : encoder_(format),
      column_count_(header.size()),
      max_file_bytes_(max_file_bytes),
      next_file_(std::move(next_file)) {
    if (header.empty()) {
        throw Error(ErrorKind::Internal, "a spool file needs at least one column");
    }
    if (!next_file_) {
        throw Error(ErrorKind::Internal, "SpoolWriter needs a file factory");
    }
    for (const auto &name : header) {
        encoder_.add_field(name);
    }
    encoder_.finish_row();
    header_ = std::string(encoder_.buffer());
    encoder_.clear();
    if (header_.size() >= max_file_bytes_) {
        // Every data row takes at least a line ending, so nothing could ever be written.
        throw RowTooLargeError(ErrorKind::DataException,
                               "the CSV header row is " + std::to_string(header_.size()) +
                                   " bytes, which leaves no room for data in files of at most " +
                                   std::to_string(max_file_bytes_) + " bytes");
    }
}

SpoolWriter::~SpoolWriter() = default;

void SpoolWriter::check_usable() const {
    if (broken_) {
        throw Error(ErrorKind::Internal, "spool writer used after a failed write");
    }
    if (finished_) {
        throw Error(ErrorKind::Internal, "spool writer used after finish()");
    }
}

void SpoolWriter::finish_row() {
    check_usable();
    // Rejected rows count too, so the number in a message matches the caller's own row count.
    const std::uint64_t row_number = ++rows_offered_;
    if (encoder_.fields_in_row() != column_count_) {
        std::size_t got = encoder_.fields_in_row();
        encoder_.discard_row();
        throw Error(ErrorKind::Internal, "CSV row " + std::to_string(row_number) + " has " +
                                             std::to_string(got) + " fields but the header has " +
                                             std::to_string(column_count_));
    }
    const std::uint64_t row_bytes = encoder_.finish_row();
    if (header_.size() + row_bytes > max_file_bytes_) {
        encoder_.drop_last_row();
        throw RowTooLargeError(ErrorKind::DataException, "CSV row " + std::to_string(row_number) + " is " +
                                                             std::to_string(row_bytes) + " bytes; with the " +
                                                             std::to_string(header_.size()) +
                                                             "-byte header it exceeds the file limit of " +
                                                             std::to_string(max_file_bytes_) + " bytes");
    }
    try {
        if (!sink_ || files_.back().bytes + row_bytes > max_file_bytes_) {
            // The rows before this one belong to the current file; this one opens the next.
            std::string_view pending = encoder_.buffer();
            if (sink_) {
                sink_->write(pending.substr(0, pending.size() - row_bytes));
                sink_->close();
                sink_.reset();
            }
            start_next_file();
            sink_->write(encoder_.last_row());
            encoder_.clear();
        }
        files_.back().bytes += row_bytes;
        files_.back().rows += 1;
        ++total_rows_;
        if (encoder_.buffer().size() >= kFlushThreshold) {
            flush_pending();
        }
    } catch (...) {
        broken_ = true;
        throw;
    }
}

void SpoolWriter::start_next_file() {
    SpoolFileInfo info;
    info.index = files_.size();
    sink_ = next_file_(info.index);
    if (!sink_) {
        throw Error(ErrorKind::Internal, "spool file factory returned no sink");
    }
    sink_->write(header_);
    info.bytes = header_.size();
    files_.push_back(info);
}

void SpoolWriter::flush_pending() {
    sink_->write(encoder_.buffer());
    encoder_.clear();
}

void SpoolWriter::finish() {
    check_usable();
    finished_ = true;
    if (!sink_) {
        return;
    }
    try {
        flush_pending();
        sink_->close();
        sink_.reset();
    } catch (...) {
        broken_ = true;
        throw;
    }
}

// ---------------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------------

Reader::Reader(ReaderOptions options, RecordCallback on_record)
    : options_(options), delimiter_(delimiter_char(options.delimiter)), on_record_(std::move(on_record)) {
    if (!on_record_) {
        throw Error(ErrorKind::Internal, "Reader needs a record callback");
    }
    std::fill(std::begin(special_unquoted_), std::end(special_unquoted_), false);
    special_unquoted_[static_cast<unsigned char>(delimiter_)] = true;
    special_unquoted_[static_cast<unsigned char>('"')] = true;
    special_unquoted_[static_cast<unsigned char>('\r')] = true;
    special_unquoted_[static_cast<unsigned char>('\n')] = true;
}

void Reader::fail(const std::string &what, std::uint64_t line) {
    throw ParseError("CSV parse error at line " + std::to_string(line) + ", record " +
                         std::to_string(record_number_ + 1) + ", field " +
                         std::to_string(field_ends_.size() + 1) + ": " + what,
                     line, record_number_ + 1);
}

void Reader::feed(const char *data, std::size_t size) {
    if (failed_) {
        throw Error(ErrorKind::Internal, "CSV reader used after an error");
    }
    if (finished_) {
        throw Error(ErrorKind::Internal, "CSV reader fed after finish()");
    }
    try {
        // The BOM may arrive split over several chunks, so remember how much of it matched so far.
        while (!bom_decided_ && size > 0) {
            if (*data == kBom[bom_bytes_seen_]) {
                ++data;
                --size;
                if (++bom_bytes_seen_ == sizeof kBom) {
                    bom_decided_ = true;
                }
            } else {
                bom_decided_ = true;
                consume(kBom, bom_bytes_seen_);  // a prefix that turned out to be data
            }
        }
        consume(data, size);
    } catch (...) {
        failed_ = true;
        throw;
    }
}

void Reader::finish() {
    if (failed_) {
        throw Error(ErrorKind::Internal, "CSV reader used after an error");
    }
    if (finished_) {
        throw Error(ErrorKind::Internal, "CSV reader finished twice");
    }
    try {
        if (!bom_decided_) {
            bom_decided_ = true;
            consume(kBom, bom_bytes_seen_);
        }
        switch (state_) {
            case State::RecordStart:
                break;
            case State::FieldStart:
            case State::Unquoted:
            case State::QuoteInQuoted:
                end_field();
                end_record();
                break;
            case State::Quoted:
                fail("quoted field not terminated at end of input", quote_line_);
            case State::CarriageReturn:
                fail("CR not followed by LF at end of input", line_);
        }
        finished_ = true;
    } catch (...) {
        failed_ = true;
        throw;
    }
}

void Reader::append(const char *data, std::size_t size) {
    if (record_.size() + size > options_.max_record_bytes) {
        fail("record longer than " + std::to_string(options_.max_record_bytes) + " bytes",
             state_ == State::Quoted ? quote_line_ : line_);
    }
    record_.append(data, size);
}

void Reader::end_field() {
    field_ends_.push_back(record_.size());
}

void Reader::end_record() {
    fields_.clear();
    std::size_t start = 0;
    for (std::size_t end : field_ends_) {
        fields_.emplace_back(record_.data() + start, end - start);
        start = end;
    }
    state_ = State::RecordStart;
    ++record_number_;
    on_record_(fields_);
    record_.clear();
    field_ends_.clear();
}

void Reader::consume(const char *p, std::size_t size) {
    const char *const end = p + size;
    while (p < end) {
        const char c = *p;
        switch (state_) {
            case State::RecordStart:
                record_line_ = line_;
                if (c == '\n') {
                    ++p;
                    ++line_;
                    end_record();  // blank line: a record with no fields
                } else if (c == '\r') {
                    ++p;
                    state_ = State::CarriageReturn;
                } else {
                    state_ = State::FieldStart;  // c is handled there
                }
                break;

            case State::FieldStart:
                if (c == '"') {
                    ++p;
                    quote_line_ = line_;
                    state_ = State::Quoted;
                } else if (c == delimiter_) {
                    ++p;
                    end_field();
                } else if (c == '\n') {
                    ++p;
                    end_field();
                    ++line_;
                    end_record();
                } else if (c == '\r') {
                    ++p;
                    end_field();
                    state_ = State::CarriageReturn;
                } else {
                    state_ = State::Unquoted;
                }
                break;

            case State::Unquoted: {
                const char *run_end = p;
                while (run_end < end && !special_unquoted_[static_cast<unsigned char>(*run_end)]) {
                    ++run_end;
                }
                append(p, static_cast<std::size_t>(run_end - p));
                p = run_end;
                if (p == end) {
                    break;
                }
                const char stop = *p++;
                if (stop == delimiter_) {
                    end_field();
                    state_ = State::FieldStart;
                } else if (stop == '\n') {
                    end_field();
                    ++line_;
                    end_record();
                } else if (stop == '\r') {
                    end_field();
                    state_ = State::CarriageReturn;
                } else {
                    fail(
                        "'\"' inside an unquoted field (a field containing quotes must be quoted as a whole)",
                        line_);
                }
                break;
            }

            case State::Quoted: {
                const char *quote =
                    static_cast<const char *>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
                const char *run_end = quote ? quote : end;
                line_ += static_cast<std::uint64_t>(std::count(p, run_end, '\n'));
                append(p, static_cast<std::size_t>(run_end - p));
                p = run_end;
                if (quote) {
                    ++p;
                    state_ = State::QuoteInQuoted;
                }
                break;
            }

            case State::QuoteInQuoted:
                ++p;
                if (c == '"') {
                    append("\"", 1);
                    state_ = State::Quoted;
                } else if (c == delimiter_) {
                    end_field();
                    state_ = State::FieldStart;
                } else if (c == '\n') {
                    end_field();
                    ++line_;
                    end_record();
                } else if (c == '\r') {
                    end_field();
                    state_ = State::CarriageReturn;
                } else {
                    fail("unexpected character after the closing quote of a field", line_);
                }
                break;

            case State::CarriageReturn:
                if (c != '\n') {
                    fail("CR not followed by LF outside a quoted field", line_);
                }
                ++p;
                ++line_;
                end_record();
                break;
        }
    }
}

}  // namespace sfb::csv
