// Package policy decides which routes a caller may call, and refuses paths
// that cannot be forwarded safely.
//
// A Policy gives each caller a named rule set: an allow-list of
// "METHOD PATTERN" rules such as "GET /api/v2/**". A caller without a rule set
// may call everything. Paths are checked by Normalize once, before matching:
// dot segments, empty segments, backslashes, encoded slashes, dots, percent
// signs and NULs, control characters and invalid UTF-8 are refused rather
// than cleaned up, because a cleaned-up path is a path the broadcaster might
// read differently from the one that was matched.
//
// Policy values are immutable; Holder swaps them atomically on reload.
package policy
