// Unit tests for the spool writer (cutting CSV into files of at most N bytes) and the file sinks.
#include "core/csv.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace sfb::csv {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Keeps what a spool file received after the writer has destroyed the sink.
struct CapturedFile {
    std::string data;
    bool closed = false;
    bool written_after_close = false;
};

class CapturingSink : public ByteSink {
  public:
    explicit CapturingSink(CapturedFile &file) : file_(file) {}
    using ByteSink::write;
    void write(const char *data, std::size_t size) override {
        file_.written_after_close |= file_.closed;
        file_.data.append(data, size);
    }
    void close() override { file_.closed = true; }

  private:
    CapturedFile &file_;
};

struct Capture {
    std::deque<CapturedFile> files;  // deque: references stay valid as files are added
    SpoolWriter::SinkFactory factory() {
        return [this](std::size_t index) -> std::unique_ptr<ByteSink> {
            EXPECT_EQ(index, files.size());
            files.emplace_back();
            return std::make_unique<CapturingSink>(files.back());
        };
    }
};

Rows parse_all(std::string_view input, Delimiter delimiter) {
    Rows rows;
    ReaderOptions options;
    options.delimiter = delimiter;
    Reader reader(options, [&](const std::vector<std::string_view> &fields) {
        rows.emplace_back(fields.begin(), fields.end());
    });
    reader.feed(input);
    reader.finish();
    return rows;
}

std::size_t encoded_size(const std::vector<std::string> &row, Format format) {
    RowEncoder encoder(format);
    for (const auto &field : row) {
        encoder.add_field(field);
    }
    return encoder.finish_row();
}

void write_row(SpoolWriter &writer, const std::vector<std::string> &row) {
    for (const auto &field : row) {
        writer.add_field(field);
    }
    writer.finish_row();
}

// Rows of three fields whose encoded sizes vary widely (0 to ~200 bytes per field, quoting included).
Rows random_rows(std::mt19937 &rng, std::size_t count) {
    static const std::string alphabet = "ab \",;\t\r\n|\xC3\xB6";
    Rows rows(count);
    for (auto &row : rows) {
        for (int f = 0; f < 3; ++f) {
            std::string field;
            const unsigned length = rng() % 4 == 0 ? rng() % 200 : rng() % 8;
            for (unsigned i = 0; i < length; ++i) {
                field += alphabet[rng() % alphabet.size()];
            }
            row.push_back(field);
        }
    }
    return rows;
}

const std::vector<std::string> kHeader = {"Legacy_Key__c", "LastName", "Note, with comma"};

struct SpoolCase {
    Format format;
    std::uint64_t limit;
};

class CsvSpoolCutting : public ::testing::TestWithParam<SpoolCase> {};

TEST_P(CsvSpoolCutting, FilesHoldWholeRowsStayWithinTheLimitAndAreCountedExactly) {
    const Format format = GetParam().format;
    const std::uint64_t limit = GetParam().limit;
    std::mt19937 rng(static_cast<unsigned>(limit));
    const Rows rows = random_rows(rng, 3000);
    const std::string header_bytes = [&] {
        RowEncoder encoder(format);
        for (const auto &name : kHeader) {
            encoder.add_field(name);
        }
        encoder.finish_row();
        return std::string(encoder.buffer());
    }();

    Capture capture;
    SpoolWriter writer(format, kHeader, limit, capture.factory());
    EXPECT_EQ(writer.header_bytes(), header_bytes.size());
    for (const auto &row : rows) {
        write_row(writer, row);
    }
    writer.finish();

    ASSERT_GT(capture.files.size(), 1u) << "the limit should force several files";
    ASSERT_EQ(writer.files().size(), capture.files.size());
    EXPECT_EQ(writer.total_rows(), rows.size());
    Rows all_data;
    for (std::size_t i = 0; i < capture.files.size(); ++i) {
        const CapturedFile &file = capture.files[i];
        const SpoolFileInfo &info = writer.files()[i];
        EXPECT_EQ(info.index, i);
        EXPECT_TRUE(file.closed) << "file " << i;
        EXPECT_FALSE(file.written_after_close) << "file " << i;
        EXPECT_EQ(file.data.size(), info.bytes) << "file " << i;
        EXPECT_LE(file.data.size(), limit) << "file " << i;
        EXPECT_EQ(file.data.compare(0, header_bytes.size(), header_bytes), 0) << "file " << i;
        Rows records = parse_all(file.data, format.delimiter);
        ASSERT_FALSE(records.empty());
        EXPECT_EQ(records.front(), kHeader);
        EXPECT_EQ(records.size() - 1, info.rows) << "file " << i;
        EXPECT_GT(info.rows, 0u) << "file " << i;
        all_data.insert(all_data.end(), records.begin() + 1, records.end());
        if (i + 1 < capture.files.size()) {
            // Greedy cutting: the file was closed only because its successor's first row did not fit.
            const std::size_t next_row = encoded_size(rows.at(all_data.size()), format);
            EXPECT_GT(info.bytes + next_row, limit) << "file " << i << " was cut early";
        }
    }
    EXPECT_EQ(all_data, rows);
}

INSTANTIATE_TEST_SUITE_P(Formats, CsvSpoolCutting,
                         ::testing::Values(SpoolCase{{Delimiter::Comma, LineEnding::LF}, 1000},
                                           SpoolCase{{Delimiter::Comma, LineEnding::CRLF}, 4096},
                                           SpoolCase{{Delimiter::Tab, LineEnding::CRLF}, 777},
                                           SpoolCase{{Delimiter::Pipe, LineEnding::LF}, 70000}),
                         [](const ::testing::TestParamInfo<SpoolCase> &info) {
                             return std::string(salesforce_name(info.param.format.delimiter)) + "_" +
                                    std::string(salesforce_name(info.param.format.line_ending)) + "_" +
                                    std::to_string(info.param.limit);
                         });

TEST(CsvSpoolWriter, RowThatExactlyFillsTheLimitIsAccepted) {
    // Header "h\n" is 2 bytes, each row "aaaa\n" is 5.
    for (std::uint64_t limit : {7u, 11u, 12u}) {
        Capture capture;
        SpoolWriter writer({}, {"h"}, limit, capture.factory());
        for (int i = 0; i < 4; ++i) {
            write_row(writer, {"aaaa"});
        }
        writer.finish();
        const std::size_t rows_per_file = (limit - 2) / 5;
        ASSERT_EQ(capture.files.size(), (4 + rows_per_file - 1) / rows_per_file) << "limit " << limit;
        std::string expected_first = "h\n";
        for (std::size_t i = 0; i < rows_per_file; ++i) {
            expected_first += "aaaa\n";
        }
        EXPECT_EQ(capture.files[0].data, expected_first) << "limit " << limit;
    }
}

TEST(CsvSpoolWriter, RowTooLargeForAnyFileIsRejectedAndTheWriterContinues) {
    Capture capture;
    // Header "id,n\n" is 5 bytes; limit 12 leaves 7 for a row.
    SpoolWriter writer({}, {"id", "n"}, 12, capture.factory());
    write_row(writer, {"1", "x"});  // 4 bytes
    try {
        write_row(writer, {"2", "xxxxxx"});  // 9 bytes: 5 + 9 > 12
        FAIL() << "oversized row accepted";
    } catch (const RowTooLargeError &e) {
        EXPECT_EQ(e.kind(), ErrorKind::DataException);
        const std::string message = e.what();
        EXPECT_NE(message.find("row 2 is 9 bytes"), std::string::npos) << message;
        EXPECT_NE(message.find("5-byte header"), std::string::npos) << message;
        EXPECT_NE(message.find("12 bytes"), std::string::npos) << message;
    }
    write_row(writer, {"3", "yyy"});  // 6 bytes: does not fit after row 1 (5+4+6 > 12), opens file 2
    writer.finish();
    ASSERT_EQ(capture.files.size(), 2u);
    EXPECT_EQ(capture.files[0].data, "id,n\n1,x\n");
    EXPECT_EQ(capture.files[1].data, "id,n\n3,yyy\n");
    EXPECT_EQ(writer.total_rows(), 2u);
}

TEST(CsvSpoolWriter, OversizedFirstRowOpensNoFile) {
    Capture capture;
    SpoolWriter writer({}, {"id"}, 6, capture.factory());
    EXPECT_THROW(write_row(writer, {"123456"}), RowTooLargeError);
    EXPECT_TRUE(capture.files.empty());
    writer.finish();
    EXPECT_TRUE(capture.files.empty());
    EXPECT_TRUE(writer.files().empty());
}

TEST(CsvSpoolWriter, HeaderThatLeavesNoRoomIsRejectedUpFront) {
    Capture capture;
    // "id,n\n" is 5 bytes: with a limit of 5 no row could ever follow it. The constructor only checks what it
    // knows, the header; a limit of 6 is accepted and rows are judged one by one.
    EXPECT_THROW(SpoolWriter({}, {"id", "n"}, 5, capture.factory()), RowTooLargeError);
    EXPECT_NO_THROW(SpoolWriter({}, {"id", "n"}, 6, capture.factory()));
    EXPECT_THROW(SpoolWriter({}, {}, 100, capture.factory()), Error);
    EXPECT_THROW(SpoolWriter({}, {"id"}, 100, nullptr), Error);
}

TEST(CsvSpoolWriter, FieldCountMustMatchTheHeader) {
    Capture capture;
    SpoolWriter writer({}, {"a", "b"}, 1000, capture.factory());
    write_row(writer, {"1", "2"});
    try {
        write_row(writer, {"1", "2", "3"});
        FAIL() << "three fields accepted under a two-column header";
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), ErrorKind::Internal);
        EXPECT_NE(std::string(e.what()).find("row 2 has 3 fields but the header has 2"), std::string::npos)
            << e.what();
    }
    try {
        write_row(writer, {"1"});
        FAIL() << "one field accepted under a two-column header";
    } catch (const Error &e) {
        // The rejected row 2 still counts, so this is row 3.
        EXPECT_NE(std::string(e.what()).find("row 3 has 1 fields"), std::string::npos) << e.what();
    }
    write_row(writer, {"x", "y"});
    writer.finish();
    ASSERT_EQ(capture.files.size(), 1u);
    EXPECT_EQ(capture.files[0].data, "a,b\n1,2\nx,y\n");
    EXPECT_EQ(writer.files()[0].rows, 2u);
}

TEST(CsvSpoolWriter, NoRowsMeansNoFiles) {
    Capture capture;
    SpoolWriter writer({}, {"a"}, 1000, capture.factory());
    writer.finish();
    EXPECT_TRUE(capture.files.empty());
    EXPECT_EQ(writer.total_rows(), 0u);
}

TEST(CsvSpoolWriter, HeaderIsEncodedWithTheFilesFormat) {
    Capture capture;
    SpoolWriter writer({Delimiter::Semicolon, LineEnding::CRLF}, {"a;b", "c"}, 1000, capture.factory());
    write_row(writer, {"1", "x;y"});
    writer.finish();
    ASSERT_EQ(capture.files.size(), 1u);
    EXPECT_EQ(capture.files[0].data, "\"a;b\";c\r\n1;\"x;y\"\r\n");
}

TEST(CsvSpoolWriter, PendingBytesReachTheSinkBeforeFinish) {
    // Memory must stay bounded: the writer may not hold a whole file until it is closed.
    Capture capture;
    SpoolWriter writer({}, {"v"}, 100'000'000, capture.factory());
    const std::string value(100, 'x');
    for (int i = 0; i < 2000; ++i) {  // ~200 KB
        write_row(writer, {value});
    }
    ASSERT_EQ(capture.files.size(), 1u);
    EXPECT_GE(capture.files[0].data.size(), 2000u * 101 - SpoolWriter::kFlushThreshold - 101);
    writer.finish();
    EXPECT_EQ(capture.files[0].data.size(), 2u + 2000u * 101);
    EXPECT_EQ(writer.files()[0].bytes, capture.files[0].data.size());
}

TEST(CsvSpoolWriter, FailingFactoryLeavesTheWriterUnusable) {
    std::deque<CapturedFile> files;
    SpoolWriter writer({}, {"h"}, 8, [&](std::size_t index) -> std::unique_ptr<ByteSink> {
        if (index == 1) {
            throw std::runtime_error("disk full");
        }
        files.emplace_back();
        return std::make_unique<CapturingSink>(files.back());
    });
    write_row(writer, {"aaa"});                                    // 2 + 4 bytes
    EXPECT_THROW(write_row(writer, {"bbb"}), std::runtime_error);  // needs file 1
    EXPECT_THROW(write_row(writer, {"c"}), Error);                 // broken now
    EXPECT_THROW(writer.finish(), Error);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_TRUE(files[0].closed);
    EXPECT_EQ(files[0].data, "h\naaa\n");
}

TEST(CsvSpoolWriter, FinishIsFinal) {
    Capture capture;
    SpoolWriter writer({}, {"h"}, 100, capture.factory());
    write_row(writer, {"a"});
    writer.finish();
    EXPECT_THROW(write_row(writer, {"b"}), Error);
    EXPECT_THROW(writer.finish(), Error);
    EXPECT_EQ(capture.files.at(0).data, "h\na\n");
}

// ---------------------------------------------------------------------------------------------------
// Sinks
// ---------------------------------------------------------------------------------------------------

class TempDir {
  public:
    TempDir() {
        std::string pattern = ::testing::TempDir() + "sfb_csv_XXXXXX";
        char *made = mkdtemp(pattern.data());
        if (made == nullptr) {
            throw std::runtime_error("mkdtemp failed");
        }
        path_ = made;
    }
    ~TempDir() {
        for (const auto &file : created_) {
            ::unlink(file.c_str());
        }
        ::rmdir(path_.c_str());
    }
    std::string file(const std::string &name) {
        created_.push_back(path_ + "/" + name);
        return created_.back();
    }

  private:
    std::string path_;
    std::vector<std::string> created_;
};

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

TEST(CsvStringSink, CollectsBytesAndRecordsClose) {
    StringSink sink;
    sink.write("ab");
    sink.write("c\0d", 3);
    EXPECT_EQ(sink.data(), std::string("abc\0d", 5));
    EXPECT_FALSE(sink.closed());
    sink.close();
    EXPECT_TRUE(sink.closed());
}

TEST(CsvFdFileSink, WritesExactBytesThroughASmallBuffer) {
    TempDir dir;
    const std::string path = dir.file("out.csv");
    auto sink = FdFileSink::create_new(path, 7);
    std::string expected;
    for (std::size_t size = 0; size <= 20; ++size) {  // below, at and above the buffer size
        const std::string piece(size, static_cast<char>('a' + size));
        sink->write(piece);
        expected += piece;
    }
    sink->write(nullptr, 0);
    EXPECT_EQ(sink->bytes_written(), expected.size());
    sink->close();
    EXPECT_FALSE(sink->is_open());
    sink->close();  // idempotent
    EXPECT_EQ(read_file(path), expected);
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    EXPECT_THROW(sink->write("x"), Error);
}

// Past kWritebackBytes the sink asks the kernel to start writing back (a hint); the bytes are unchanged,
// also when single writes straddle the threshold or bypass the buffer.
TEST(CsvFdFileSink, FilesLargerThanTheWritebackStepKeepTheirBytes) {
    TempDir dir;
    const std::string path = dir.file("large.csv");
    auto sink = FdFileSink::create_new(path, 1000);
    std::string expected;
    std::size_t size = 1;
    while (expected.size() < 3 * FdFileSink::kWritebackBytes) {
        const std::string piece(size, static_cast<char>('a' + size % 26));
        sink->write(piece);
        expected += piece;
        size = size * 7 % 300007 + 1;  // small, buffered writes and large, direct ones
    }
    sink->close();
    EXPECT_EQ(read_file(path), expected);
}

TEST(CsvFdFileSink, SyncMakesBufferedBytesVisible) {
    TempDir dir;
    const std::string path = dir.file("synced.csv");
    auto sink = FdFileSink::create_new(path);
    sink->write("abc");
    EXPECT_EQ(read_file(path), "");  // still buffered
    sink->sync();
    EXPECT_EQ(read_file(path), "abc");
    sink->close();
}

TEST(CsvFdFileSink, RefusesToOverwriteAnExistingFile) {
    TempDir dir;
    const std::string path = dir.file("exists.csv");
    FdFileSink::create_new(path)->close();
    try {
        FdFileSink::create_new(path);
        FAIL() << "overwrote an existing file";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("could not create"), std::string::npos) << e.what();
    }
}

TEST(CsvFdFileSink, WriteErrorsAreReportedWithTheFileName) {
    const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        GTEST_SKIP() << "/dev/full not available";
    }
    FdFileSink sink(fd, "spool-chunk-7", 4);
    sink.write("ab");  // buffered, no error yet
    try {
        sink.write("cdefgh");
        FAIL() << "write to /dev/full succeeded";
    } catch (const Error &e) {
        EXPECT_NE(std::string(e.what()).find("could not write to file \"spool-chunk-7\""), std::string::npos)
            << e.what();
    }
}

TEST(CsvFdFileSink, SpoolFilesOnDiskHaveExactlyTheCountedSizes) {
    TempDir dir;
    const Format format{Delimiter::Comma, LineEnding::CRLF};
    std::vector<std::string> paths;
    SpoolWriter writer(format, kHeader, 5000, [&](std::size_t index) -> std::unique_ptr<ByteSink> {
        paths.push_back(dir.file("chunk_" + std::to_string(index) + ".csv"));
        return FdFileSink::create_new(paths.back(), 512);
    });
    std::mt19937 rng(99u);
    const Rows rows = random_rows(rng, 2000);
    for (const auto &row : rows) {
        write_row(writer, row);
    }
    writer.finish();
    ASSERT_GT(paths.size(), 2u);
    ASSERT_EQ(writer.files().size(), paths.size());
    Rows all_data;
    for (std::size_t i = 0; i < paths.size(); ++i) {
        struct stat info {};
        ASSERT_EQ(::stat(paths[i].c_str(), &info), 0);
        EXPECT_EQ(static_cast<std::uint64_t>(info.st_size), writer.files()[i].bytes) << paths[i];
        EXPECT_LE(static_cast<std::uint64_t>(info.st_size), 5000u) << paths[i];
        Rows records = parse_all(read_file(paths[i]), format.delimiter);
        ASSERT_FALSE(records.empty());
        EXPECT_EQ(records.front(), kHeader);
        all_data.insert(all_data.end(), records.begin() + 1, records.end());
    }
    EXPECT_EQ(all_data, rows);
}

}  // namespace
}  // namespace sfb::csv
