// The command lines of the load generator and the comparison echo servers: "--name value"
// pairs, written by the driver scripts (compare.py, compare_threads.py) rather than by people, so
// a number is read as atoi / atof read it and only the servers check ranges. An unknown flag or
// a flag without its value is an error. Benchmark-only code, independent of the library.
#pragma once

#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace bench {

/// One flag of a table: its name and what takes its value (false: a bad value).
struct Flag {
  std::string_view name;
  std::function<bool(const char*)> set;
};

/// A Flag's setter that stores the value in `out`: a string as it is, a number as atof / atol
/// read it.
template <class T>
std::function<bool(const char*)> into(T& out) {
  return [&out](const char* value) {
    if constexpr (std::is_arithmetic_v<T>) {
      if constexpr (std::is_floating_point_v<T>) {
        out = std::atof(value);
      } else {
        out = static_cast<T>(std::atol(value));
      }
    } else {
      out = value;
    }
    return true;
  };
}

/// Parses argv[1..argc) as pairs against `flags`; false on an unknown flag, a missing value or a
/// value its setter refuses.
inline bool parse_flag_pairs(int argc, char** argv, std::initializer_list<Flag> flags) {
  if (argc % 2 != 1) return false;
  for (int i = 1; i < argc; i += 2) {
    const Flag* flag = nullptr;
    for (const Flag& f : flags) {
      if (f.name == argv[i]) flag = &f;
    }
    if (flag == nullptr || !flag->set(argv[i + 1])) return false;
  }
  return true;
}

}  // namespace bench
