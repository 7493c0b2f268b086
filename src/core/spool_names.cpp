#include "core/spool_names.h"

#include <string_view>

namespace sfb {

std::string upload_file_name(const std::string &job_prefix, int upload_no) {
    return job_prefix + std::to_string(upload_no) + ".csv";
}

std::string query_page_file_name(const std::string &job_prefix, int page_no) {
    return job_prefix + "page" + std::to_string(page_no) + ".csv";
}

std::string result_file_name(const std::string &upload_file, IngestResult kind) {
    std::string_view stem(upload_file);
    if (stem.size() >= 4 && stem.substr(stem.size() - 4) == ".csv")
        stem.remove_suffix(4);
    const char *suffix = kind == IngestResult::Successful ? ".successful.csv"
                         : kind == IngestResult::Failed   ? ".failed.csv"
                                                          : ".unprocessed.csv";
    return std::string(stem) + suffix;
}

}  // namespace sfb
