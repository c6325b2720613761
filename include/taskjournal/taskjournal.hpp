// Umbrella header: everything a user of taskjournal needs.
#pragma once

#include "taskjournal/copy.hpp"
#include "taskjournal/error.hpp"
#include "taskjournal/host.hpp"
#include "taskjournal/journal.hpp"
#include "taskjournal/json.hpp"
#include "taskjournal/lifecycle.hpp"
#include "taskjournal/notifications.hpp"
#include "taskjournal/options.hpp"
#include "taskjournal/reader.hpp"
#include "taskjournal/registry.hpp"
#include "taskjournal/types.hpp"
#include "taskjournal/version.hpp"
