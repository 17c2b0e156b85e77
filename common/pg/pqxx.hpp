// The one include of libpqxx 6.4 for the whole project: include this, never <pqxx/pqxx>.
#pragma once

// libpqxx 6.4.5's headers compile cleanly under our warning set because they come from a
// system include folder. Should a newer build warn, silence it here, once, for everyone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <pqxx/pqxx>
#pragma GCC diagnostic pop
