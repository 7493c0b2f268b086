#include "core/rest_query.h"

#include "core/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sfb {
namespace {

using Row = std::vector<std::optional<std::string>>;
const std::optional<std::string> kNull;

// The recorded page of docs/soql-and-rest.md §1.2, with its second record.
const char *const kRecorded =
    R"json({"totalSize":10000,"done":false,"nextRecordsUrl":"/services/data/v53.0/query/01gB000003OCxSPIA1-2000",
 "records":[{"attributes":{"type":"random__c","url":"/services/data/v53.0/sobjects/random__c/a01B0000009ZjAmIAK"},
             "RANDOM_1__c":"NLEA","RANDOM_2__c":null},
            {"attributes":{"type":"random__c","url":"/services/data/v53.0/sobjects/random__c/a01B0000009ZjAnIAK"},
             "RANDOM_1__c":null,"RANDOM_2__c":"QXZT"}]})json";

RestQueryPage parse(const std::string &body, const std::vector<SoqlPath> &paths) {
    return parse_rest_query_page(body, paths);
}

// One record with the given members after "attributes"; the values of `paths`.
Row one(const std::string &members, const std::vector<SoqlPath> &paths) {
    const RestQueryPage page =
        parse(R"({"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account",)"
              R"("url":"/services/data/v62.0/sobjects/Account/001000000000000AAA"},)" +
                  members + "}]}",
              paths);
    EXPECT_EQ(page.rows.size(), 1u);
    return page.rows.empty() ? Row() : page.rows[0];
}

// The value read for member "F" holding `json_value`.
std::optional<std::string> value(const std::string &json_value) {
    const Row r = one("\"F\":" + json_value, {{"F"}});
    return r.empty() ? kNull : r[0];
}

// The message of the sfb::Error the parse throws, checking its kind; "" when it does not throw.
std::string error_of(const std::string &body, const std::vector<SoqlPath> &paths = {{"Name"}},
                     ErrorKind kind = ErrorKind::ExternalService) {
    try {
        parse(body, paths);
    } catch (const Error &e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        return e.what();
    }
    return "";
}

std::string page_with(const std::string &records) {
    return R"({"totalSize":3,"done":true,"records":)" + records + "}";
}

TEST(RestQueryPage, ReadsTheRecordedPage) {
    const RestQueryPage p = parse(kRecorded, {{"RANDOM_1__c"}, {"RANDOM_2__c"}});
    EXPECT_EQ(p.total_size, 10000);
    EXPECT_FALSE(p.done);
    EXPECT_EQ(p.next_records_url, "/services/data/v53.0/query/01gB000003OCxSPIA1-2000");
    ASSERT_EQ(p.rows.size(), 2u);
    EXPECT_EQ(p.rows[0], (Row{"NLEA", kNull}));
    EXPECT_EQ(p.rows[1], (Row{kNull, "QXZT"}));
}

TEST(RestQueryPage, TopLevelMembersInAnyOrderAndOptional) {
    const RestQueryPage p = parse(R"({"records":[{"Name":"a"}],"done":true,"totalSize":1})", {{"Name"}});
    EXPECT_TRUE(p.done);
    EXPECT_EQ(p.total_size, 1);
    EXPECT_EQ(p.next_records_url, "");
    EXPECT_EQ(p.rows, (std::vector<Row>{{"a"}}));

    const RestQueryPage q = parse(R"({"done":true,"records":[]})", {{"Name"}});
    EXPECT_EQ(q.total_size, 0);
    EXPECT_TRUE(q.rows.empty());

    // null counts as absent for the optional members; unknown members are skipped whatever they hold.
    const RestQueryPage r =
        parse(R"({"totalSize":null,"nextRecordsUrl":null,"queryLocator":{"a":[1,{"b":null}]},)"
              R"("extra":[[],{}],"flag":false,"done":true,"records":[{"Name":"x"}],"n":1.5})",
              {{"Name"}});
    EXPECT_EQ(r.total_size, 0);
    EXPECT_EQ(r.rows, (std::vector<Row>{{"x"}}));
}

TEST(RestQueryPage, DoneTrueIgnoresANextRecordsUrl) {
    const RestQueryPage p =
        parse(R"({"done":true,"nextRecordsUrl":"/services/data/v62.0/query/01g-2000","records":[]})", {});
    EXPECT_TRUE(p.done);
    EXPECT_EQ(p.next_records_url, "");
}

TEST(RestQueryPage, CountQueryHasTheCountInTotalSize) {
    const RestQueryPage p = parse(R"({"totalSize":42,"done":true,"records":[]})", {});
    EXPECT_EQ(p.total_size, 42);
    EXPECT_TRUE(p.rows.empty());
    // A whole number printed as a float (some emulators) is accepted, as describe does.
    EXPECT_EQ(parse(R"({"totalSize":18.0,"done":true,"records":[]})", {}).total_size, 18);
    EXPECT_EQ(parse(R"({"totalSize":9223372036854775807,"done":true,"records":[]})", {}).total_size,
              9223372036854775807LL);
}

TEST(RestQueryPage, AggregateResultColumns) {
    const RestQueryPage p = parse(R"({"totalSize":2,"done":true,"records":[
        {"attributes":{"type":"AggregateResult"},"Industry":"Energy","expr0":3},
        {"attributes":{"type":"AggregateResult"},"Industry":null,"expr0":12}]})",
                                  {{"Industry"}, {"expr0"}});
    EXPECT_EQ(p.rows, (std::vector<Row>{{"Energy", "3"}, {kNull, "12"}}));
}

TEST(RestQueryPage, NamesMatchCaseInsensitivelyInAnyOrder) {
    // The SELECT spelled them otherwise and in another order than the answer.
    const Row r = one(R"("Name":"Acme","BillingCity":"Paris","Custom_Field__c":"x")",
                      {{"custom_field__C"}, {"NAME"}, {"billingcity"}});
    EXPECT_EQ(r, (Row{"x", "Acme", "Paris"}));
}

TEST(RestQueryPage, SamePathTwiceFillsBothColumns) {
    EXPECT_EQ(one(R"("Name":"Acme")", {{"Name"}, {"name"}, {"Id"}}), (Row{"Acme", "Acme", kNull}));
}

TEST(RestQueryPage, MissingMemberIsNull) {
    EXPECT_EQ(one(R"("Name":"Acme")", {{"Phone"}, {"Name"}, {"Owner", "Email"}}),
              (Row{kNull, "Acme", kNull}));
}

TEST(RestQueryPage, AttributesAndUnselectedMembersAreSkipped) {
    const Row r = one(R"("Skip":{"attributes":{"type":"User"},"Name":"no"},"List":[1,[2,{"Name":"no"}]],)"
                      R"("Other":"no","Name":"yes")",
                      {{"Name"}, {"attributes"}, {"type"}, {"url"}});
    EXPECT_EQ(r, (Row{"yes", kNull, kNull, kNull}));
}

TEST(RestQueryPage, StringsAreDecodedUtf8) {
    EXPECT_EQ(value(R"("plain")"), "plain");
    EXPECT_EQ(value(R"("")"), "");
    EXPECT_EQ(value(R"("line one\r\nline two")"), "line one\r\nline two");
    EXPECT_EQ(value(R"("O'Brien \"the\" \\ back\/slash\ttab")"), "O'Brien \"the\" \\ back/slash\ttab");
    EXPECT_EQ(value(R"("caf\u00e9 \u20AC")"), "caf\xC3\xA9 \xE2\x82\xAC");
    EXPECT_EQ(value(R"("\ud83d\ude00")"), "\xF0\x9F\x98\x80");  // a surrogate pair
    EXPECT_EQ(value("\"T\xC3\xBCrk\xC3\xA7"
                    "e \xF0\x9F\x98\x80\""),
              "T\xC3\xBCrk\xC3\xA7"
              "e \xF0\x9F\x98\x80");
    EXPECT_EQ(value(R"("\u0001\u001f")"), "\x01\x1F");
}

TEST(RestQueryPage, ScalarsAsSent) {
    EXPECT_EQ(value("true"), "true");
    EXPECT_EQ(value("false"), "false");
    EXPECT_EQ(value("null"), kNull);
    EXPECT_EQ(value(R"("005i00000016PdaAAE")"), "005i00000016PdaAAE");
    EXPECT_EQ(value(R"("Red;Blue")"), "Red;Blue");  // multipicklist: the glue splits it
    EXPECT_EQ(value(R"("2024-01-31")"), "2024-01-31");
    EXPECT_EQ(value(R"("2017-10-11T13:11:58.000+0000")"), "2017-10-11T13:11:58.000+0000");
    EXPECT_EQ(value(R"("13:30:00.000Z")"), "13:30:00.000Z");
}

TEST(RestQueryPage, NumbersKeepTheirTokenText) {
    EXPECT_EQ(value("12345"), "12345");
    EXPECT_EQ(value("-7"), "-7");
    EXPECT_EQ(value("0"), "0");
    EXPECT_EQ(value("543210.0"), "543210.0");
    EXPECT_EQ(value("5.0"), "5.0");
    EXPECT_EQ(value("1.2345678E7"), "1.2345678E7");
    EXPECT_EQ(value("1.2345678e+7"), "1.2345678e+7");
    EXPECT_EQ(value("-2.5E-7"), "-2.5E-7");
    EXPECT_EQ(value("12345678901234567890.123"), "12345678901234567890.123");
    EXPECT_EQ(value("0.1000000000000000055511151231257827"), "0.1000000000000000055511151231257827");
    EXPECT_EQ(value("9223372036854775807"), "9223372036854775807");
    EXPECT_EQ(value("-9223372036854775808"), "-9223372036854775808");
    EXPECT_EQ(value("18446744073709551615"), "18446744073709551615");
    // Beyond 64 bits nlohmann reads an integer as a float: the token is still what we get.
    EXPECT_EQ(value("123456789012345678901234567890"), "123456789012345678901234567890");
    EXPECT_EQ(value("-123456789012345678901234567890"), "-123456789012345678901234567890");
}

TEST(RestQueryPage, ParentRelationshipPaths) {
    const char *const owner =
        R"("Owner":{"attributes":{"type":"User","url":"/services/data/v62.0/sobjects/User/005000000000000AAA"},)"
        R"("Name":"Guy Smiley","Email":"guy@example.com","Manager":{"attributes":{"type":"User"},"Name":"Boss"}})";
    EXPECT_EQ(
        one(owner, {{"Owner", "Email"}, {"owner", "name"}, {"Owner", "Manager", "Name"}, {"Owner", "Phone"}}),
        (Row{"guy@example.com", "Guy Smiley", "Boss", kNull}));
    // No parent, at the first or the second step: every column through it is NULL.
    EXPECT_EQ(one(R"("Owner":null,"Name":"n")", {{"Owner", "Email"}, {"Owner", "Manager", "Name"}, {"Name"}}),
              (Row{kNull, kNull, "n"}));
    EXPECT_EQ(one(R"("Owner":{"attributes":{"type":"User"},"Manager":null,"Email":"e"})",
                  {{"Owner", "Manager", "Name"}, {"Owner", "Email"}}),
              (Row{kNull, "e"}));
    // A parent that is missing altogether.
    EXPECT_EQ(one(R"("Name":"n")", {{"Account", "Owner", "Name"}}), (Row{kNull}));
}

TEST(RestQueryPage, FivePathLevels) {
    const std::string body =
        R"("Account":{"attributes":{"type":"Account"},"Owner":{"attributes":{"type":"User"},)"
        R"("Manager":{"attributes":{"type":"User"},"Manager":{"attributes":{"type":"User"},"Name":"Top"}}}})";
    EXPECT_EQ(one(body, {{"Account", "Owner", "Manager", "Manager", "Name"}}), (Row{"Top"}));
}

TEST(RestQueryPage, CompoundValuesAsCompactJson) {
    const std::string address =
        R"({ "city" : "Paris", "country":"France","geocodeAccuracy":null, "latitude":48.8566140000000,)"
        R"( "longitude":2.35222E0,"postalCode":"75001","state":null,"street":"1 Rue \"de\" Rivoli\r\n\u00c9tage 2"})";
    EXPECT_EQ(value(address),
              R"({"city":"Paris","country":"France","geocodeAccuracy":null,"latitude":48.8566140000000,)"
              R"("longitude":2.35222E0,"postalCode":"75001","state":null,"street":"1 Rue \"de\" Rivoli\r\n)"
              "\xC3\x89tage 2\"}");
    EXPECT_EQ(value(R"({"latitude":37.7749,"longitude":-122.4194})"),
              R"({"latitude":37.7749,"longitude":-122.4194})");
    EXPECT_EQ(value("null"), kNull);  // every part null
}

TEST(RestQueryPage, ArraysAndChildSubqueriesAsCompactJson) {
    EXPECT_EQ(value(R"([1, 2.50, "x\u0001", [], {}, [true,false,null], {"a":{"b":[-0.0]}}])"),
              R"([1,2.50,"x\u0001",[],{},[true,false,null],{"a":{"b":[-0.0]}}])");
    const std::string contacts =
        R"({"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"LastName":"Okafor"}]})";
    EXPECT_EQ(
        value(contacts),
        R"({"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"LastName":"Okafor"}]})");
    // A captured value round-trips to the same JSON.
    EXPECT_EQ(nlohmann::json::parse(*value(contacts)), nlohmann::json::parse(contacts));
}

// Against nlohmann's DOM on a generated page: strings and structure agree (numbers are compared as JSON
// values, which the DOM holds as doubles, so only ones a double keeps exactly are generated).
TEST(RestQueryPage, AgreesWithTheDomParser) {
    using nlohmann::json;
    const std::vector<std::string> texts = {
        "",        "a",          "\xC3\xA9t\xC3\xA9", "\xF0\x9F\x98\x80 \xE2\x82\xAC",
        "q\"\\/'", "\r\n\t\x01", "Red;Blue",          "\xE4\xB8\xAD\xE6\x96\x87"};
    json records = json::array();
    for (int i = 0; i < 64; ++i) {
        json r = {{"attributes", {{"type", "Account"}, {"url", "/x"}}}};
        r["S"] = texts[i % texts.size()];
        r["N"] = i % 5 == 0 ? json(nullptr) : json(i * 0.25);
        r["B"] = i % 2 == 0;
        r["Addr"] = i % 4 == 0 ? json(nullptr)
                               : json({{"city", texts[(i + 1) % texts.size()]},
                                       {"latitude", i * 0.5},
                                       {"nested", json::array({i, texts[(i + 2) % texts.size()], nullptr})}});
        r["Owner"] =
            i % 3 == 0 ? json(nullptr)
                       : json({{"attributes", {{"type", "User"}}}, {"Name", texts[(i + 3) % texts.size()]}});
        records.push_back(r);
    }
    const json page = {{"totalSize", 64}, {"done", true}, {"records", records}};
    const RestQueryPage p = parse(page.dump(), {{"S"}, {"N"}, {"B"}, {"Addr"}, {"Owner", "Name"}});
    ASSERT_EQ(p.rows.size(), 64u);
    for (std::size_t i = 0; i < 64; ++i) {
        const json &r = records[i];
        const Row &row = p.rows[i];
        EXPECT_EQ(row[0], r["S"].get<std::string>());
        if (r["N"].is_null()) {
            EXPECT_EQ(row[1], kNull);
        } else {
            EXPECT_EQ(json::parse(*row[1]), r["N"]);
        }
        EXPECT_EQ(row[2], r["B"].get<bool>() ? "true" : "false");
        if (r["Addr"].is_null()) {
            EXPECT_EQ(row[3], kNull);
        } else {
            EXPECT_EQ(row[3], r["Addr"].dump());
        }
        if (r["Owner"].is_null()) {
            EXPECT_EQ(row[4], kNull);
        } else {
            EXPECT_EQ(row[4], r["Owner"]["Name"].get<std::string>());
        }
    }
}

TEST(RestQueryPage, ManyRecordsKeepTheirOrder) {
    std::string records = "[";
    for (int i = 0; i < 2000; ++i) {
        records += (i ? "," : "");
        records += R"({"attributes":{"type":"Account"},"Id":")" + std::to_string(i) + R"(","N":)" +
                   std::to_string(i) + ".5" + (i % 3 == 0 ? R"(,"Owner":null)" : R"(,"Owner":{"Name":"o"})") +
                   "}";
    }
    records += "]";
    const RestQueryPage p = parse(page_with(records), {{"Id"}, {"N"}, {"Owner", "Name"}});
    ASSERT_EQ(p.rows.size(), 2000u);
    for (int i = 0; i < 2000; ++i) {
        ASSERT_EQ(p.rows[i], (Row{std::to_string(i), std::to_string(i) + ".5", i % 3 == 0 ? kNull : "o"}));
    }
}

TEST(RestQueryPageErrors, NotJson) {
    EXPECT_EQ(error_of(""), "REST query answer is not valid JSON: it ends early, after 0 bytes");
    EXPECT_EQ(error_of("{\"done\":true,\"records\":[{\"Name\":\"ab"),
              "REST query answer is not valid JSON: it ends early, after 35 bytes (in records[0])");
    EXPECT_EQ(error_of("{\"done\":true,\"records\":[{\"Name\":\"a\"},{\"Name\" \"b\"}]}"),
              "REST query answer is not valid JSON: syntax error at byte 48 (in records[1])");
    EXPECT_EQ(error_of("{\"done\":true,\"records\":[]} x"),
              "REST query answer is not valid JSON: syntax error at byte 28");
    EXPECT_EQ(error_of("<html>Bad Gateway</html>"),
              "REST query answer is not valid JSON: syntax error at byte 1");
    // Not UTF-8, a lone surrogate, an unescaped control character, a number too large for a double.
    EXPECT_NE(error_of("{\"done\":true,\"records\":[{\"Name\":\"\xC3\x28\"}]}"), "");
    EXPECT_NE(error_of(R"({"done":true,"records":[{"Name":"\ud83d"}]})"), "");
    EXPECT_NE(error_of("{\"done\":true,\"records\":[{\"Name\":\"a\nb\"}]}"), "");
    EXPECT_NE(error_of(R"({"done":true,"records":[{"Name":1E400}]})"), "");
}

TEST(RestQueryPageErrors, EveryTruncationIsAnErrorNotACrash) {
    const std::string body = kRecorded;
    for (std::size_t n = 0; n < body.size(); ++n) {
        const std::string message = error_of(body.substr(0, n), {{"RANDOM_1__c"}, {"Owner", "Name"}});
        EXPECT_EQ(message.rfind("REST query answer is not valid JSON", 0), 0u) << n << ": " << message;
    }
}

TEST(RestQueryPageErrors, TopLevelShape) {
    EXPECT_EQ(error_of(R"([{"message":"unexpected token: SELEKT","errorCode":"MALFORMED_QUERY"}])"),
              "REST query answer is not a JSON object");
    EXPECT_EQ(error_of("\"text\""), "REST query answer is not a JSON object");
    EXPECT_EQ(error_of("42"), "REST query answer is not a JSON object");
    EXPECT_EQ(error_of("null"), "REST query answer is not a JSON object");
    EXPECT_EQ(error_of(R"({"done":true})"), "REST query answer lacks the required member \"records\"");
    EXPECT_EQ(error_of(R"({"done":true,"records":null})"),
              "REST query answer lacks the required member \"records\"");
    EXPECT_EQ(error_of(R"({"records":[]})"), "REST query answer lacks the required member \"done\"");
    EXPECT_EQ(error_of(R"({"done":null,"records":[]})"),
              "REST query answer lacks the required member \"done\"");
    EXPECT_EQ(error_of(R"({"done":true,"records":{}})"),
              "REST query answer has a records that is an object, not an array");
    EXPECT_EQ(error_of(R"({"done":true,"records":"[]"})"),
              "REST query answer has a records that is a string, not an array");
    EXPECT_EQ(error_of(R"({"done":"true","records":[]})"),
              "REST query answer has a done that is a string, not a boolean");
    EXPECT_EQ(error_of(R"({"done":1,"records":[]})"),
              "REST query answer has a done that is a number, not a boolean");
    EXPECT_EQ(error_of(R"({"done":[],"records":[]})"),
              "REST query answer has a done that is an array, not a boolean");
    EXPECT_EQ(error_of(R"({"done":true,"totalSize":"3","records":[]})"),
              "REST query answer has a totalSize that is a string, not a non-negative integer");
    EXPECT_EQ(error_of(R"({"done":true,"totalSize":-1,"records":[]})"),
              "REST query answer has a totalSize that is not a non-negative integer");
    EXPECT_EQ(error_of(R"({"done":true,"totalSize":1.5,"records":[]})"),
              "REST query answer has a totalSize that is not a non-negative integer");
    EXPECT_EQ(error_of(R"({"done":true,"totalSize":9223372036854775808,"records":[]})"),
              "REST query answer has a totalSize that is not a non-negative integer");
    EXPECT_EQ(error_of(R"({"done":true,"totalSize":{},"records":[]})"),
              "REST query answer has a totalSize that is an object, not a non-negative integer");
    EXPECT_EQ(error_of(R"({"done":false,"nextRecordsUrl":7,"records":[]})"),
              "REST query answer has a nextRecordsUrl that is a number, not a string");
    EXPECT_EQ(error_of(R"({"done":true,"done":true,"records":[]})"),
              "REST query answer has the member \"done\" twice");
    EXPECT_EQ(error_of(R"({"done":true,"records":[],"records":[]})"),
              "REST query answer has the member \"records\" twice");
}

TEST(RestQueryPageErrors, PagingNeedsAUsableNextRecordsUrl) {
    EXPECT_EQ(error_of(R"({"done":false,"records":[]})"),
              "REST query answer says done is false but has no nextRecordsUrl");
    EXPECT_EQ(error_of(R"({"done":false,"nextRecordsUrl":null,"records":[]})"),
              "REST query answer says done is false but has no nextRecordsUrl");
    EXPECT_EQ(error_of(R"({"done":false,"nextRecordsUrl":"","records":[]})"),
              "REST query answer says done is false but has no nextRecordsUrl");
    for (const char *url :
         {"https://evil.example/services/data/v62.0/query/01g-2000", "services/data/v62.0/x",
          "/services/data/../../oauth2/token", "/services/data/v62.0/query/01g 2000",
          "/services/data/v62.0/query/01g\\u0000-2000", "/services/data/v62.0/query/\\u00e9"}) {
        EXPECT_EQ(error_of(std::string(R"({"done":false,"nextRecordsUrl":")") + url + R"(","records":[]})"),
                  "REST query answer has a nextRecordsUrl that is not a path below /services/data/")
            << url;
    }
}

TEST(RestQueryPageErrors, RecordShape) {
    EXPECT_EQ(error_of(page_with(R"([{"Name":"a"},"b"])")),
              "REST query answer records[1] is a string, not a JSON object");
    EXPECT_EQ(error_of(page_with(R"([null])")), "REST query answer records[0] is null, not a JSON object");
    EXPECT_EQ(error_of(page_with(R"([{"Name":"a"},{"Name":"b"},[]])")),
              "REST query answer records[2] is an array, not a JSON object");
    EXPECT_EQ(error_of(page_with(R"([7])")), "REST query answer records[0] is a number, not a JSON object");
    EXPECT_EQ(error_of(page_with(R"([true])")),
              "REST query answer records[0] is a boolean, not a JSON object");
}

TEST(RestQueryPageErrors, RelationshipThatIsNotARecord) {
    const std::vector<SoqlPath> paths = {{"Name"}, {"Owner", "Manager", "Email"}};
    EXPECT_EQ(error_of(page_with(R"([{"Name":"a"},{"Owner":"005000000000000AAA"}])"), paths),
              "REST query answer records[1].Owner is a string, not a parent record (a JSON object) or null");
    EXPECT_EQ(error_of(page_with(R"([{"Owner":[]}])"), paths),
              "REST query answer records[0].Owner is an array, not a parent record (a JSON object) or null");
    EXPECT_EQ(
        error_of(page_with(R"([{"Owner":{"Manager":5}}])"), paths),
        "REST query answer records[0].Owner.Manager is a number, not a parent record (a JSON object) or "
        "null");
    EXPECT_EQ(
        error_of(page_with(R"([{"Owner":{"Manager":false}}])"), paths),
        "REST query answer records[0].Owner.Manager is a boolean, not a parent record (a JSON object) or "
        "null");
}

TEST(RestQueryPageErrors, SelectedMemberTwice) {
    EXPECT_EQ(error_of(page_with(R"([{"Name":"a"},{"Name":"a","name":"b"}])")),
              "REST query answer records[1] has the member \"Name\" twice");
    EXPECT_EQ(error_of(page_with(R"([{"Owner":{"Email":"a","Email":null}}])"), {{"Owner", "Email"}}),
              "REST query answer records[0].Owner has the member \"Email\" twice");
    EXPECT_EQ(error_of(page_with(R"([{"Owner":null,"Owner":{"Email":"a"}}])"), {{"Owner", "Email"}}),
              "REST query answer records[0] has the member \"Owner\" twice");
    // Members not selected may repeat; the same member in the next record is no repetition.
    EXPECT_EQ(parse(page_with(R"([{"X":1,"X":2,"Name":"a"},{"Name":"b"}])"), {{"Name"}}).rows,
              (std::vector<Row>{{"a"}, {"b"}}));
}

TEST(RestQueryPageErrors, MessagesNeverQuoteValues) {
    const std::string secret = "s3cr3t-VALUE";
    for (const std::string &body :
         {page_with(R"([{"Name":")" + secret + R"(","Owner":")" + secret + R"("}])"),
          page_with(R"([{"Name":")" + secret + R"("},")" + secret + R"("])"),
          std::string(R"({"done":false,"nextRecordsUrl":"/x/)") + secret + R"(","records":[]})",
          std::string(R"({"done":")") + secret + R"(","records":[]})",
          page_with(R"([{"Name":")" + secret + R"(" )" + secret + "}]")}) {
        const std::string message = error_of(body, {{"Name"}, {"Owner", "Name"}});
        EXPECT_NE(message, "");
        EXPECT_EQ(message.find(secret), std::string::npos) << message;
    }
}

TEST(RestQueryPageErrors, NulInASelectedValue) {
    EXPECT_EQ(error_of(page_with(R"([{"Name":"a\u0000b"}])"), {{"Name"}}, ErrorKind::DataException),
              "REST query answer records[0].Name holds the character U+0000, which PostgreSQL cannot store");
    EXPECT_EQ(error_of(page_with(R"([{"A":{"street":"a\u0000"}}])"), {{"A"}}, ErrorKind::DataException),
              "REST query answer records[0].A holds the character U+0000, which PostgreSQL cannot store");
    EXPECT_EQ(error_of(page_with(R"([{"A":{"\u0000":1}}])"), {{"A"}}, ErrorKind::DataException),
              "REST query answer records[0].A holds the character U+0000, which PostgreSQL cannot store");
    // Not selected: not read.
    EXPECT_EQ(parse(page_with(R"([{"Other":"a\u0000","Name":"b"}])"), {{"Name"}}).rows,
              (std::vector<Row>{{"b"}}));
}

TEST(RestQueryPageErrors, UnusablePaths) {
    const std::string body = page_with("[]");
    EXPECT_EQ(error_of(body, {{"Name"}, {}}, ErrorKind::InvalidParameter),
              "REST query column 2 has an empty path");
    EXPECT_EQ(error_of(body, {{"Owner", ""}}, ErrorKind::InvalidParameter),
              "REST query column 1 has an empty name in its path");
    const std::string prefix =
        "selects a relationship that another column's path goes through, or goes through one that another "
        "column selects";
    EXPECT_EQ(error_of(body, {{"Owner"}, {"Owner", "Email"}}, ErrorKind::InvalidParameter),
              "REST query column 2 " + prefix);
    EXPECT_EQ(error_of(body, {{"Owner", "Email"}, {"owner"}}, ErrorKind::InvalidParameter),
              "REST query column 2 " + prefix);
}

}  // namespace
}  // namespace sfb
