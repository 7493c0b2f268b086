// The core's error type. The glue maps ErrorKind onto a SQLSTATE, so core code says *what kind* of
// failure happened without knowing anything about PostgreSQL's error codes.
#pragma once
#include "core/core_only.h"

#include <stdexcept>
#include <string>

namespace sfb {

enum class ErrorKind {
    InvalidOptionName,  // an option the object does not know (FDW validator, function options)
    MissingOption,      // a required option is absent
    InvalidParameter,   // a value of the wrong shape (URL, version, enum name, identifier)
    DataException,      // a value that cannot be serialised or parsed (CSV, types)
    ExternalService,    // Salesforce (or the emulator) answered with an error
    Connection,         // transport failure talking to Salesforce
    Internal,           // a broken invariant inside sf_bulk
};

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, const std::string &message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

  private:
    ErrorKind kind_;
};

}  // namespace sfb
