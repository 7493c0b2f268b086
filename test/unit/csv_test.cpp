// Unit tests for src/core/csv: dialect names, the row encoder (exact bytes), the streaming reader
// (chunking, BOM, line endings, strict quoting) and randomized write -> read round trips.
// Spool cutting and file sinks are in csv_spool_test.cpp.
#include "core/csv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sfb::csv {
namespace {

using Rows = std::vector<std::vector<std::string>>;

const Delimiter kAllDelimiters[] = {Delimiter::Comma, Delimiter::Tab,   Delimiter::Semicolon,
                                    Delimiter::Pipe,  Delimiter::Caret, Delimiter::Backquote};

std::string encode(const Rows &rows, Format format = {}) {
    RowEncoder encoder(format);
    for (const auto &row : rows) {
        for (const auto &field : row) {
            encoder.add_field(field);
        }
        encoder.finish_row();
    }
    return std::string(encoder.buffer());
}

// Feeds `input` in chunks of `chunk` bytes (0 = all at once) and returns every record.
Rows parse(std::string_view input, Delimiter delimiter = Delimiter::Comma, std::size_t chunk = 0) {
    Rows rows;
    ReaderOptions options;
    options.delimiter = delimiter;
    Reader reader(options, [&](const std::vector<std::string_view> &fields) {
        rows.emplace_back(fields.begin(), fields.end());
    });
    if (chunk == 0) {
        reader.feed(input);
    } else {
        for (std::size_t i = 0; i < input.size(); i += chunk) {
            reader.feed(input.substr(i, chunk));
        }
    }
    reader.finish();
    return rows;
}

// Parses input that must be rejected and returns the error.
ParseError parse_error(std::string_view input, Delimiter delimiter = Delimiter::Comma) {
    try {
        parse(input, delimiter);
    } catch (const ParseError &e) {
        return e;
    }
    ADD_FAILURE() << "no ParseError for input: " << ::testing::PrintToString(std::string(input));
    return ParseError("none", 0, 0);
}

// ---------------------------------------------------------------------------------------------------
// Dialect names
// ---------------------------------------------------------------------------------------------------

TEST(CsvDialect, DelimiterBytesAndNamesMatchSalesforce) {
    struct Expected {
        Delimiter delimiter;
        char byte;
        const char *name;
    };
    const Expected expected[] = {
        {Delimiter::Comma, ',', "COMMA"},         {Delimiter::Tab, '\t', "TAB"},
        {Delimiter::Semicolon, ';', "SEMICOLON"}, {Delimiter::Pipe, '|', "PIPE"},
        {Delimiter::Caret, '^', "CARET"},         {Delimiter::Backquote, '`', "BACKQUOTE"},
    };
    for (const auto &e : expected) {
        EXPECT_EQ(delimiter_char(e.delimiter), e.byte) << e.name;
        EXPECT_EQ(salesforce_name(e.delimiter), e.name);
        EXPECT_EQ(parse_delimiter(e.name), e.delimiter) << e.name;
    }
}

TEST(CsvDialect, DelimiterNamesIgnoreAsciiCase) {
    EXPECT_EQ(parse_delimiter("tab"), Delimiter::Tab);
    EXPECT_EQ(parse_delimiter("Pipe"), Delimiter::Pipe);
    EXPECT_EQ(parse_delimiter("backQuote"), Delimiter::Backquote);
}

TEST(CsvDialect, UnknownDelimiterNamesAreRejectedWithTheValidList) {
    for (const char *bad : {"", "COLON", " COMMA", "COMMA ", "COMMAS", ",", "\t", "SEMI"}) {
        try {
            parse_delimiter(bad);
            ADD_FAILURE() << "accepted \"" << bad << "\"";
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
            const std::string message = e.what();
            EXPECT_NE(message.find(std::string("\"") + bad + "\""), std::string::npos) << message;
            EXPECT_NE(message.find("COMMA, TAB, SEMICOLON, PIPE, CARET, BACKQUOTE"), std::string::npos)
                << message;
        }
    }
}

TEST(CsvDialect, LongUnknownNameIsTruncatedInTheMessage) {
    const std::string huge(10000, 'x');
    try {
        parse_delimiter(huge);
        FAIL() << "accepted a huge name";
    } catch (const Error &e) {
        EXPECT_LT(std::string(e.what()).size(), 200u);
        EXPECT_NE(std::string(e.what()).find("xxx...\""), std::string::npos);
    }
}

TEST(CsvDialect, LineEndingBytesAndNames) {
    EXPECT_EQ(line_ending_bytes(LineEnding::LF), "\n");
    EXPECT_EQ(line_ending_bytes(LineEnding::CRLF), "\r\n");
    EXPECT_EQ(salesforce_name(LineEnding::LF), "LF");
    EXPECT_EQ(salesforce_name(LineEnding::CRLF), "CRLF");
    EXPECT_EQ(parse_line_ending("LF"), LineEnding::LF);
    EXPECT_EQ(parse_line_ending("CRLF"), LineEnding::CRLF);
    EXPECT_EQ(parse_line_ending("crlf"), LineEnding::CRLF);
}

TEST(CsvDialect, UnknownLineEndingNamesAreRejected) {
    for (const char *bad : {"", "CR", "\n", "\r\n", "LFCR", "CRLF\n"}) {
        try {
            parse_line_ending(bad);
            ADD_FAILURE() << "accepted " << ::testing::PrintToString(std::string(bad));
        } catch (const Error &e) {
            EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
            EXPECT_NE(std::string(e.what()).find("expected one of LF, CRLF"), std::string::npos) << e.what();
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Writer: exact bytes
// ---------------------------------------------------------------------------------------------------

TEST(CsvWriter, PlainFieldsAreNotQuoted) {
    // Spaces, '#N/A', apostrophes and other delimiters' characters need no quotes with COMMA.
    EXPECT_EQ(encode({{"a", "b c", " lead", "trail ", "#N/A", "O'Brien", "x;y|z^w`v\tu"}}),
              "a,b c, lead,trail ,#N/A,O'Brien,x;y|z^w`v\tu\n");
}

TEST(CsvWriter, QuotesEachSpecialCharacter) {
    EXPECT_EQ(encode({{"a,b"}}), "\"a,b\"\n");
    EXPECT_EQ(encode({{"a\"b"}}), "\"a\"\"b\"\n");
    EXPECT_EQ(encode({{"a\rb"}}), "\"a\rb\"\n");  // a lone CR is quoted too
    EXPECT_EQ(encode({{"a\nb"}}), "\"a\nb\"\n");
    EXPECT_EQ(encode({{"a\r\nb"}}), "\"a\r\nb\"\n");
    EXPECT_EQ(encode({{","}}), "\",\"\n");
    EXPECT_EQ(encode({{"\r"}}), "\"\r\"\n");
    EXPECT_EQ(encode({{"\n"}}), "\"\n\"\n");
}

TEST(CsvWriter, DoublesEveryEmbeddedQuote) {
    EXPECT_EQ(encode({{"She said \"yes\""}}), "\"She said \"\"yes\"\"\"\n");
    EXPECT_EQ(encode({{"\""}}), "\"\"\"\"\n");
    EXPECT_EQ(encode({{"\"\""}}), "\"\"\"\"\"\"\n");
    EXPECT_EQ(encode({{"\"a\",\"b\""}}), "\"\"\"a\"\",\"\"b\"\"\"\n");
}

TEST(CsvWriter, EmptyFieldsStayEmptyCells) {
    EXPECT_EQ(encode({{"", "a", ""}}), ",a,\n");
    EXPECT_EQ(encode({{"a", ""}}), "a,\n");  // trailing empty field
    EXPECT_EQ(encode({{"", ""}}), ",\n");
    EXPECT_EQ(encode({{"", "", ""}}), ",,\n");
}

TEST(CsvWriter, SingleEmptyFieldIsQuotedSoTheLineIsNotBlank) {
    EXPECT_EQ(encode({{""}}), "\"\"\n");
    EXPECT_EQ(encode({{""}}, {Delimiter::Comma, LineEnding::CRLF}), "\"\"\r\n");
    EXPECT_EQ(encode({{"x"}}), "x\n");
    EXPECT_EQ(encode({{"x"}, {""}, {"y"}}), "x\n\"\"\ny\n");
}

TEST(CsvWriter, RowWithoutFieldsIsRejected) {
    RowEncoder encoder;
    EXPECT_THROW(encoder.finish_row(), Error);
    EXPECT_EQ(encoder.buffer(), "");
}

TEST(CsvWriter, CrlfLineEnding) {
    const Format crlf{Delimiter::Comma, LineEnding::CRLF};
    EXPECT_EQ(encode({{"a", "b"}, {"c", "d"}}, crlf), "a,b\r\nc,d\r\n");
    EXPECT_EQ(encode({{"a\nb", "c"}}, crlf), "\"a\nb\",c\r\n");
    EXPECT_EQ(encode({{"", "c"}}, crlf), ",c\r\n");
}

TEST(CsvWriter, UnicodePassesThroughByteForByte) {
    const std::string text = "Tanaka & S\xC3\xB6hne \xE2\x82\xAC \xF0\x9F\x98\x80";
    EXPECT_EQ(encode({{text, "\xE6\x97\xA5\xE6\x9C\xAC"}}), text + ",\xE6\x97\xA5\xE6\x9C\xAC\n");
    // A BOM inside data is just bytes; only the reader's very first bytes are special.
    EXPECT_EQ(encode({{"\xEF\xBB\xBFx"}}), "\xEF\xBB\xBFx\n");
}

class CsvWriterDelimiter : public ::testing::TestWithParam<Delimiter> {};

TEST_P(CsvWriterDelimiter, QuotesOnlyItsOwnDelimiter) {
    const Delimiter delimiter = GetParam();
    const char d = delimiter_char(delimiter);
    const std::string all_delimiters = ",\t;|^`";
    std::string others;
    for (char c : all_delimiters) {
        if (c != d) {
            others += c;
        }
    }
    const Format format{delimiter, LineEnding::LF};
    const std::string own = std::string("a") + d + "b";
    EXPECT_EQ(encode({{"x", others, own, ""}}, format),
              std::string("x") + d + others + d + "\"" + own + "\"" + d + "\n");
    RowEncoder encoder(format);
    EXPECT_TRUE(encoder.needs_quoting(own));
    EXPECT_FALSE(encoder.needs_quoting(others));
}

INSTANTIATE_TEST_SUITE_P(AllSix, CsvWriterDelimiter, ::testing::ValuesIn(kAllDelimiters),
                         [](const ::testing::TestParamInfo<Delimiter> &info) {
                             return std::string(salesforce_name(info.param));
                         });

// The word-at-a-time scan must find a special byte at every position of values of every length, with the
// other bytes chosen near the specials (the bit trick's borrow crosses bytes).
TEST(CsvWriter, NeedsQuotingFindsASpecialByteAtEveryPosition) {
    for (Delimiter delimiter : kAllDelimiters) {
        const Format format{delimiter, LineEnding::LF};
        RowEncoder encoder(format);
        const char d = delimiter_char(delimiter);
        const std::string fillers = std::string("a\x01\x7f\x80\xff ,\t;|^`\x0b\x0c!#\x00", 17);
        for (char filler : fillers) {
            if (filler == d)
                continue;
            for (std::size_t length = 0; length <= 40; ++length) {
                const std::string plain(length, filler);
                EXPECT_FALSE(encoder.needs_quoting(plain)) << int(filler) << " " << length;
                for (std::size_t at = 0; at < length; ++at) {
                    for (char special : {d, '"', '\r', '\n'}) {
                        std::string value = plain;
                        value[at] = special;
                        ASSERT_TRUE(encoder.needs_quoting(value))
                            << salesforce_name(delimiter) << " " << int(special) << " at " << at << " of "
                            << length;
                    }
                }
            }
        }
    }
}

TEST(CsvWriter, QuotedFieldsDoubleQuotesAnywhere) {
    EXPECT_EQ(encode({{"\"", "a\"", "\"a", "\"\"", "a\"\"b\"c"}}),
              "\"\"\"\",\"a\"\"\",\"\"\"a\",\"\"\"\"\"\",\"a\"\"\"\"b\"\"c\"\n");
    const std::string quotes(1000, '"');
    EXPECT_EQ(encode({{quotes}}), "\"" + std::string(2000, '"') + "\"\n");
}

TEST(CsvWriter, LargeFieldsGrowTheBufferAndClearKeepsWorking) {
    RowEncoder encoder;
    std::string expected;
    for (int i = 0; i < 200; ++i) {
        const std::string value(static_cast<std::size_t>(i) * 97, static_cast<char>('a' + i % 26));
        const std::string quoted = value + ",";
        encoder.add_field(value);
        encoder.add_field(quoted);
        encoder.finish_row();
        expected += value + ",\"" + quoted + "\"\n";
        if (i % 50 == 49) {
            ASSERT_EQ(encoder.buffer(), expected);
            encoder.clear();
            expected.clear();
        }
    }
    EXPECT_EQ(encoder.buffer(), "");
}

TEST(CsvWriter, FinishRowReturnsTheExactRowSize) {
    RowEncoder encoder({Delimiter::Comma, LineEnding::CRLF});
    encoder.add_field("a\"b");
    encoder.add_field("");
    encoder.add_field("x");
    const std::size_t first = encoder.finish_row();
    EXPECT_EQ(first, std::string("\"a\"\"b\",,x\r\n").size());
    EXPECT_EQ(encoder.last_row(), "\"a\"\"b\",,x\r\n");
    encoder.add_field("");
    const std::size_t second = encoder.finish_row();
    EXPECT_EQ(second, 4u);
    EXPECT_EQ(encoder.last_row(), "\"\"\r\n");
    EXPECT_EQ(encoder.buffer().size(), first + second);
    EXPECT_EQ(encoder.buffer(), "\"a\"\"b\",,x\r\n\"\"\r\n");
}

TEST(CsvWriter, ClearAndDiscardKeepTheEncoderUsable) {
    RowEncoder encoder;
    encoder.add_field("a");
    encoder.finish_row();
    encoder.add_field("partial");
    EXPECT_EQ(encoder.fields_in_row(), 1u);
    encoder.discard_row();
    EXPECT_EQ(encoder.fields_in_row(), 0u);
    EXPECT_EQ(encoder.buffer(), "a\n");
    encoder.add_field("b");
    encoder.add_field("c");
    encoder.finish_row();
    EXPECT_EQ(encoder.buffer(), "a\nb,c\n");
    encoder.drop_last_row();
    EXPECT_EQ(encoder.buffer(), "a\n");
    EXPECT_THROW(encoder.drop_last_row(), Error);  // only once per row
    encoder.clear();
    EXPECT_EQ(encoder.buffer(), "");
    EXPECT_EQ(encoder.last_row(), "");
    encoder.add_field("d");
    EXPECT_EQ(encoder.finish_row(), 2u);
    EXPECT_EQ(encoder.buffer(), "d\n");
}

// ---------------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------------

TEST(CsvReader, LfCrlfAndMixedLineEndings) {
    const Rows expected = {{"a", "b"}, {"c", "d"}, {"e", "f"}};
    EXPECT_EQ(parse("a,b\nc,d\ne,f\n"), expected);
    EXPECT_EQ(parse("a,b\r\nc,d\r\ne,f\r\n"), expected);
    EXPECT_EQ(parse("a,b\r\nc,d\ne,f\r\n"), expected);
}

TEST(CsvReader, FinalLineWithoutLineEnding) {
    EXPECT_EQ(parse("a,b\nc,d"), (Rows{{"a", "b"}, {"c", "d"}}));
    EXPECT_EQ(parse("a,b\n\"c\",\"d\""), (Rows{{"a", "b"}, {"c", "d"}}));
    EXPECT_EQ(parse("a,"), (Rows{{"a", ""}}));
    EXPECT_EQ(parse("\"\""), (Rows{{""}}));
    EXPECT_EQ(parse("x"), (Rows{{"x"}}));
}

TEST(CsvReader, SalesforceUnprocessedRecordsSample) {
    // docs/bulk-api-2.md §7.3: re-quoted by the server and sent without a final line ending.
    EXPECT_EQ(parse("\"Name\",\"Employees\"\n\"Foo\",12"), (Rows{{"Name", "Employees"}, {"Foo", "12"}}));
}

TEST(CsvReader, SalesforceFailedResultsSample) {
    const std::string input =
        "\"sf__Id\",\"sf__Error\",\"Legacy_Key__c\",\"LastName\",\"Email\"\n"
        "\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --\",\"K-1002\",\"\","
        "\"#N/A\"\n";
    EXPECT_EQ(parse(input),
              (Rows{{"sf__Id", "sf__Error", "Legacy_Key__c", "LastName", "Email"},
                    {"", "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
                     "K-1002", "", "#N/A"}}));
}

TEST(CsvReader, EmptyInputAndTrailingLineEndingYieldNoExtraRecord) {
    EXPECT_EQ(parse(""), Rows{});
    EXPECT_EQ(parse("a\n"), (Rows{{"a"}}));
    EXPECT_EQ(parse("a\r\n"), (Rows{{"a"}}));

    Rows rows;
    Reader reader({}, [&](const std::vector<std::string_view> &fields) {
        rows.emplace_back(fields.begin(), fields.end());
    });
    reader.feed(nullptr, 0);  // an empty chunk, e.g. from a zero-length HTTP read
    reader.feed("a");
    reader.feed(nullptr, 0);
    reader.finish();
    EXPECT_EQ(rows, (Rows{{"a"}}));
}

TEST(CsvReader, BlankLineIsARecordWithoutFields) {
    EXPECT_EQ(parse("\n"), (Rows{{}}));
    EXPECT_EQ(parse("a\n\nb\n"), (Rows{{"a"}, {}, {"b"}}));
    EXPECT_EQ(parse("a\r\n\r\nb"), (Rows{{"a"}, {}, {"b"}}));
    // ...whereas a quoted empty field is one empty field, and a lone delimiter two.
    EXPECT_EQ(parse("\"\"\n"), (Rows{{""}}));
    EXPECT_EQ(parse(",\n"), (Rows{{"", ""}}));
}

TEST(CsvReader, EmptyFieldsInEveryPosition) {
    EXPECT_EQ(parse(",a,\n"), (Rows{{"", "a", ""}}));
    EXPECT_EQ(parse(",,\n"), (Rows{{"", "", ""}}));
    EXPECT_EQ(parse("\"\",\"\",\"\"\r\n"), (Rows{{"", "", ""}}));
    EXPECT_EQ(parse("a,\"\"\n"), (Rows{{"a", ""}}));
}

TEST(CsvReader, QuotedFieldsKeepEveryByte) {
    EXPECT_EQ(parse("\"a,b\",\"c\"\"d\"\n"), (Rows{{"a,b", "c\"d"}}));
    EXPECT_EQ(parse("\"line1\nline2\",x\n"), (Rows{{"line1\nline2", "x"}}));
    EXPECT_EQ(parse("\"line1\r\nline2\",x\r\n"), (Rows{{"line1\r\nline2", "x"}}));
    EXPECT_EQ(parse("\"lone\rcr\"\n"), (Rows{{"lone\rcr"}}));
    EXPECT_EQ(parse("\"\"\"\"\n"), (Rows{{"\""}}));
    EXPECT_EQ(parse("\" padded \", bare \n"), (Rows{{" padded ", " bare "}}));
}

TEST(CsvReader, BomAtTheStartIsSkippedElsewhereKept) {
    const std::string bom = "\xEF\xBB\xBF";
    EXPECT_EQ(parse(bom + "Id,Name\n1,x\n"), (Rows{{"Id", "Name"}, {"1", "x"}}));
    EXPECT_EQ(parse(bom + "\"Id\"\n"), (Rows{{"Id"}}));
    EXPECT_EQ(parse(bom), Rows{});
    // Only one BOM is stripped, and only at the very start.
    EXPECT_EQ(parse(bom + bom + "a\n"), (Rows{{bom + "a"}}));
    EXPECT_EQ(parse("a\n" + bom + "b\n"), (Rows{{"a"}, {bom + "b"}}));
    // A BOM prefix that turns out not to be one is data.
    EXPECT_EQ(parse("\xEF\xBBx\n"), (Rows{{"\xEF\xBBx"}}));
    EXPECT_EQ(parse("\xEF"), (Rows{{"\xEF"}}));
    EXPECT_EQ(parse("\xEF\xBB"), (Rows{{"\xEF\xBB"}}));
    EXPECT_EQ(parse("\xEF,\n"), (Rows{{"\xEF", ""}}));
}

TEST(CsvReader, UnicodeIsKeptByteForByte) {
    const std::string text = "Tanaka & S\xC3\xB6hne \xF0\x9F\x98\x80";
    EXPECT_EQ(parse("\"" + text + "\"," + text + "\n"), (Rows{{text, text}}));
}

class CsvReaderDelimiter : public ::testing::TestWithParam<Delimiter> {};

TEST_P(CsvReaderDelimiter, SplitsOnlyOnItsOwnDelimiter) {
    const Delimiter delimiter = GetParam();
    const std::string d(1, delimiter_char(delimiter));
    std::string others;
    for (char c : std::string(",\t;|^`")) {
        if (c != d[0]) {
            others += c;
        }
    }
    const std::string input = "a" + d + others + d + "\"q" + d + "\"\"\"" + d + "\n" + d + "\r\n";
    EXPECT_EQ(parse(input, delimiter), (Rows{{"a", others, "q" + d + "\"", ""}, {"", ""}}));
}

INSTANTIATE_TEST_SUITE_P(AllSix, CsvReaderDelimiter, ::testing::ValuesIn(kAllDelimiters),
                         [](const ::testing::TestParamInfo<Delimiter> &info) {
                             return std::string(salesforce_name(info.param));
                         });

TEST(CsvReader, StrictAboutBareQuotes) {
    const ParseError bare = parse_error("id,name\n1,O\"Brien\n");
    EXPECT_EQ(bare.line(), 2u);
    EXPECT_EQ(bare.record(), 2u);
    EXPECT_EQ(bare.kind(), ErrorKind::DataException);
    EXPECT_NE(std::string(bare.what()).find("line 2, record 2, field 2"), std::string::npos) << bare.what();
    EXPECT_NE(std::string(bare.what()).find("unquoted field"), std::string::npos) << bare.what();

    EXPECT_EQ(parse_error("ab\"\n").line(), 1u);
    EXPECT_EQ(parse_error("a,b\"").line(), 1u);
}

TEST(CsvReader, StrictAboutTextAfterAClosingQuote) {
    EXPECT_NE(std::string(parse_error("\"a\"b\n").what()).find("after the closing quote"), std::string::npos);
    parse_error("\"a\" ,b\n");  // a space between closing quote and delimiter is invalid for Salesforce too
    parse_error("\"a\"\"\n");   // ends inside the quotes after an escaped quote
    parse_error("x\n\"a\"\r\r\n");
}

TEST(CsvReader, LoneCrOutsideQuotesIsAnError) {
    const ParseError middle = parse_error("a\rb\n");
    EXPECT_EQ(middle.line(), 1u);
    EXPECT_NE(std::string(middle.what()).find("CR not followed by LF"), std::string::npos);
    EXPECT_EQ(parse_error("a\nb\r").line(), 2u);  // at end of input
    parse_error("\r");
    parse_error("\"a\"\rb");
}

TEST(CsvReader, UnterminatedQuoteNamesTheLineWhereItOpened) {
    const ParseError e = parse_error("h1,h2\nok,fine\nx,\"never closed\nmore\nlines");
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.record(), 3u);
    EXPECT_NE(std::string(e.what()).find("not terminated"), std::string::npos) << e.what();
    EXPECT_EQ(parse_error("\"").line(), 1u);
}

TEST(CsvReader, LineNumbersCountNewlinesInsideQuotes) {
    // Record 3 starts on line 4 because record 2 spans two lines.
    const ParseError e = parse_error("h\n\"two\nlines\"\nbad\"\n");
    EXPECT_EQ(e.line(), 4u);
    EXPECT_EQ(e.record(), 3u);
}

TEST(CsvReader, ReportsRecordNumberAndStartLineDuringTheCallback) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
    Reader *self = nullptr;
    Reader reader({}, [&](const std::vector<std::string_view> &) {
        seen.emplace_back(self->record_number(), self->record_line());
    });
    self = &reader;
    reader.feed("h\n\"a\nb\"\r\n\nlast");
    reader.finish();
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> expected = {{1, 1}, {2, 2}, {3, 4}, {4, 5}};
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(reader.record_number(), 4u);
}

TEST(CsvReader, RecordLongerThanTheLimitIsRejected) {
    ReaderOptions options;
    options.max_record_bytes = 8;
    std::size_t records = 0;
    Reader reader(options, [&](const std::vector<std::string_view> &) { ++records; });
    reader.feed("1234,5678\n");  // exactly 8 decoded bytes: fine
    EXPECT_EQ(records, 1u);
    EXPECT_THROW(reader.feed("\"12345\",6789\n"), ParseError);
    EXPECT_EQ(records, 1u);
}

TEST(CsvReader, RefusesInputAfterAnErrorOrAfterFinish) {
    Reader failing({}, [](const std::vector<std::string_view> &) {});
    EXPECT_THROW(failing.feed("a\"\n"), ParseError);
    EXPECT_THROW(failing.feed("b\n"), Error);
    EXPECT_THROW(failing.finish(), Error);

    Reader finished({}, [](const std::vector<std::string_view> &) {});
    finished.feed("a\n");
    finished.finish();
    EXPECT_THROW(finished.feed("b\n"), Error);
    EXPECT_THROW(finished.finish(), Error);
}

TEST(CsvReader, ExceptionFromTheCallbackPropagatesAndStopsTheReader) {
    int calls = 0;
    Reader reader({}, [&](const std::vector<std::string_view> &fields) {
        ++calls;
        if (fields.at(0) == "stop") {
            throw std::runtime_error("caller says stop");
        }
    });
    EXPECT_THROW(reader.feed("go\nstop\nnever\n"), std::runtime_error);
    EXPECT_EQ(calls, 2);
    EXPECT_THROW(reader.feed("more\n"), Error);
    EXPECT_EQ(calls, 2);
}

// The same input split at every offset, and into every three pieces, must give the same records: this
// covers splits inside the BOM, inside quotes, between "" halves, between CR and LF, at delimiters.
TEST(CsvReader, ChunkBoundariesAnywhere) {
    const std::string input =
        "\xEF\xBB\xBF"
        "\"Id\",Name,\"Note\"\r\n"
        "1,\"Ada \"\"the\"\" first\",\"a,b\r\nc\"\r\n"
        "\r\n"
        "2,,\"\"\n"
        "3,\xC3\xB6,\"x\ry\"";
    const Rows expected = {{"Id", "Name", "Note"},
                           {"1", "Ada \"the\" first", "a,b\r\nc"},
                           {},
                           {"2", "", ""},
                           {"3", "\xC3\xB6", "x\ry"}};
    ASSERT_EQ(parse(input), expected);
    EXPECT_EQ(parse(input, Delimiter::Comma, 1), expected);
    for (std::size_t i = 0; i <= input.size(); ++i) {
        for (std::size_t j = i; j <= input.size(); ++j) {
            Rows rows;
            Reader reader({}, [&](const std::vector<std::string_view> &fields) {
                rows.emplace_back(fields.begin(), fields.end());
            });
            reader.feed(input.substr(0, i));
            reader.feed(input.substr(i, j - i));
            reader.feed(input.substr(j));
            reader.finish();
            ASSERT_EQ(rows, expected) << "split at " << i << " and " << j;
        }
    }
}

TEST(CsvReader, ErrorsDoNotDependOnChunking) {
    for (const std::string input : {"a,b\nc,\"d\ne", "a,b\nc\"d\n", "a\r\nb\rc", "\"a\"x"}) {
        const ParseError whole = parse_error(input);
        for (std::size_t i = 0; i <= input.size(); ++i) {
            Reader reader({}, [](const std::vector<std::string_view> &) {});
            try {
                reader.feed(input.substr(0, i));
                reader.feed(input.substr(i));
                reader.finish();
                ADD_FAILURE() << "no error when split at " << i;
            } catch (const ParseError &e) {
                EXPECT_EQ(e.line(), whole.line()) << "split at " << i;
                EXPECT_EQ(e.record(), whole.record()) << "split at " << i;
                EXPECT_STREQ(e.what(), whole.what()) << "split at " << i;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Randomized round trips
// ---------------------------------------------------------------------------------------------------

// Fields drawn from an alphabet heavy in the characters that matter: quotes, all six delimiters, CR, LF,
// spaces, multi-byte UTF-8 (including the BOM's bytes), plus the special values '', '#N/A'.
std::string random_field(std::mt19937 &rng) {
    static const std::vector<std::string> pieces = {"\"",
                                                    "\"",
                                                    "\"\"",
                                                    ",",
                                                    "\t",
                                                    ";",
                                                    "|",
                                                    "^",
                                                    "`",
                                                    "\r",
                                                    "\n",
                                                    "\r\n",
                                                    " ",
                                                    "  ",
                                                    "a",
                                                    "b",
                                                    "Z",
                                                    "0",
                                                    "#N/A",
                                                    "\xC3\xB6",
                                                    "\xE2\x82\xAC",
                                                    "\xF0\x9F\x98\x80",
                                                    "\xEF\xBB\xBF",
                                                    "O'Brien",
                                                    "x,y"};
    const unsigned shape = rng() % 10;
    if (shape == 0) {
        return "";
    }
    if (shape == 1) {
        return "#N/A";
    }
    std::string field;
    const unsigned length = rng() % 12 + 1;
    for (unsigned i = 0; i < length; ++i) {
        field += pieces[rng() % pieces.size()];
    }
    return field;
}

Rows random_rows(std::mt19937 &rng, std::size_t count) {
    Rows rows(count);
    for (auto &row : rows) {
        const unsigned fields = rng() % 8 + 1;
        for (unsigned i = 0; i < fields; ++i) {
            row.push_back(random_field(rng));
        }
    }
    return rows;
}

struct RoundTripCase {
    Delimiter delimiter;
    LineEnding line_ending;
};

class CsvRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(CsvRoundTrip, ThousandsOfRandomRowsSurviveWriteThenChunkedRead) {
    const Format format{GetParam().delimiter, GetParam().line_ending};
    std::mt19937 rng(20251129u + static_cast<unsigned>(format.delimiter) * 2 +
                     static_cast<unsigned>(format.line_ending));
    const Rows rows = random_rows(rng, 4000);

    RowEncoder encoder(format);
    std::size_t counted = 0;
    std::vector<std::size_t> row_sizes;
    for (const auto &row : rows) {
        for (const auto &field : row) {
            encoder.add_field(field);
        }
        row_sizes.push_back(encoder.finish_row());
        counted += row_sizes.back();
    }
    const std::string csv(encoder.buffer());
    ASSERT_EQ(counted, csv.size());

    // Read back in random chunk sizes, from 1 byte to 4 KiB, with a BOM in front half of the time.
    for (int pass = 0; pass < 4; ++pass) {
        const std::string input = (pass % 2 == 1 ? "\xEF\xBB\xBF" : "") + csv;
        Rows read;
        std::vector<std::uint64_t> start_lines;
        ReaderOptions options;
        options.delimiter = format.delimiter;
        Reader *self = nullptr;
        Reader reader(options, [&](const std::vector<std::string_view> &fields) {
            read.emplace_back(fields.begin(), fields.end());
            start_lines.push_back(self->record_line());
        });
        self = &reader;
        const std::size_t max_chunk = pass < 2 ? 16 : 4096;
        for (std::size_t at = 0; at < input.size();) {
            const std::size_t chunk = std::min<std::size_t>(rng() % max_chunk + 1, input.size() - at);
            reader.feed(input.data() + at, chunk);
            at += chunk;
        }
        reader.finish();
        ASSERT_EQ(read.size(), rows.size()) << "pass " << pass;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            ASSERT_EQ(read[i], rows[i]) << "row " << i << " pass " << pass;
        }
        // Line numbers must track the LFs actually emitted before each record.
        std::uint64_t line = 1;
        std::size_t offset = 0;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            ASSERT_EQ(start_lines[i], line) << "row " << i;
            const std::string_view encoded(csv.data() + offset, row_sizes[i]);
            line += static_cast<std::uint64_t>(std::count(encoded.begin(), encoded.end(), '\n'));
            offset += row_sizes[i];
        }
    }
}

std::vector<RoundTripCase> all_formats() {
    std::vector<RoundTripCase> cases;
    for (Delimiter delimiter : kAllDelimiters) {
        for (LineEnding line_ending : {LineEnding::LF, LineEnding::CRLF}) {
            cases.push_back({delimiter, line_ending});
        }
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CsvRoundTrip, ::testing::ValuesIn(all_formats()),
                         [](const ::testing::TestParamInfo<RoundTripCase> &info) {
                             return std::string(salesforce_name(info.param.delimiter)) + "_" +
                                    std::string(salesforce_name(info.param.line_ending));
                         });

// The encoder's output must also be exactly what a minimal reference encoder produces, so a bug that
// the reader happens to mirror (e.g. quoting too little and parsing leniently) cannot hide.
TEST(CsvRoundTrip, EncoderMatchesReferenceRules) {
    std::mt19937 rng(7u);
    const Rows rows = random_rows(rng, 3000);
    for (Delimiter delimiter : kAllDelimiters) {
        const char d = delimiter_char(delimiter);
        std::string reference;
        for (const auto &row : rows) {
            for (std::size_t i = 0; i < row.size(); ++i) {
                const std::string &field = row[i];
                if (i > 0) {
                    reference += d;
                }
                const bool quote = field.find_first_of(std::string("\"\r\n") + d) != std::string::npos ||
                                   (row.size() == 1 && field.empty());
                if (!quote) {
                    reference += field;
                    continue;
                }
                reference += '"';
                for (char c : field) {
                    reference += c;
                    if (c == '"') {
                        reference += '"';
                    }
                }
                reference += '"';
            }
            reference += "\r\n";
        }
        EXPECT_EQ(encode(rows, {delimiter, LineEnding::CRLF}), reference) << salesforce_name(delimiter);
    }
}

}  // namespace
}  // namespace sfb::csv
