// What the tests' child processes (wspushd, nginx) are started with: execve's arrays, built
// before fork so that the child only makes async-signal-safe calls.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace wspush::testing {

// Our environment without any WSPUSH_* variable (a developer's shell must not change what a test
// configures), plus `extra`.
std::vector<std::string> childEnvironment(const std::map<std::string, std::string>& extra);

// execve's NULL-terminated array of pointers into `strings`, which must outlive it.
std::vector<char*> pointersTo(std::vector<std::string>& strings);

}  // namespace wspush::testing
