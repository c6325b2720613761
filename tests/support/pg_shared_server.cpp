// taskjournal-test-pg-server: one PostgreSQL server for a whole ctest run (fixture pg_shared,
// tests/CMakeLists.txt), so that each contract test on PostgreSQL connects to it instead of
// starting a server of its own (about 0.5 s each). The contract suites give every journal a
// schema of its own, so sharing a server isolates them as well as separate servers did.
//
//   taskjournal-test-pg-server start FILE   starts a server, writes its socket directory to FILE
//   taskjournal-test-pg-server stop FILE    stops that server, removes it and FILE
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "support/pg_server.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using taskjournal::testing::PgServer;
  if (argc != 3 || (std::string(argv[1]) != "start" && std::string(argv[1]) != "stop")) {
    std::cerr << "usage: taskjournal-test-pg-server start|stop FILE\n";
    return 2;
  }
  const fs::path file = argv[2];
  try {
    if (std::string(argv[1]) == "start") {
      PgServer server({.max_connections = 100});  // two test processes at a time, a few each
      fs::create_directories(file.parent_path());
      const fs::path tmp = file.string() + ".tmp";
      std::ofstream(tmp) << server.dir() << "\n";
      fs::rename(tmp, file);
      std::cout << "shared PostgreSQL server in " << server.dir() << "\n";
      server.release();
      return 0;
    }
    std::ifstream in(file);
    std::string dir;
    if (std::getline(in, dir) && !dir.empty()) {
      PgServer server = PgServer::adopt(dir);  // stopped and removed when it goes
    }
    std::error_code ec;
    fs::remove(file, ec);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "taskjournal-test-pg-server: " << e.what() << "\n";
    return 1;
  }
}
