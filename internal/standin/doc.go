// Package standin is an in-memory stand-in for the Streaming.Center broadcaster API (api/v2),
// faithful to the API docs/design.md describes (The broadcaster API). scgate's demo, tests and benchmarks put it behind the
// gateway so they can see what the upstream received (which key prefixes, which headers) and
// exercise the key rules without a real control panel.
//
// What it serves (every path ends in "/"; anything else is 404 {"detail": "Not found."}):
//
//	/api/v2/history/         GET             paginated, newest first, no key
//	/api/v2/channels/        GET, POST       paginated; POST needs a key
//	/api/v2/playlists/       GET, POST       plain array; both need a key unless Options.PlaylistsGETPublic
//	/api/v2/playlists/{id}/  GET             single object; needs a key like the list
//	/api/v2/grid/            GET, POST       plain array; POST needs a key
//
// The panel hosts four radio servers ("stations", the server=<id> of the API): 1 and 2, and two
// small ones, 3 and 4, for tests and demos that scope a caller to one station.
//
// HEAD is served wherever GET is. Other methods on a known path get 405 with an Allow header.
//
// The backend being mimicked is Django REST Framework, so where the vendor's docs are silent the
// stand-in answers the way DRF would: {"detail": "..."} bodies for 403/404/405/413/415,
// {"field": ["message"]} bodies for validation errors, and the {count,next,previous,results}
// envelope with absolute next/previous links built from the request's scheme and Host (the
// links leak the upstream address, which is exactly what the gateway must rewrite).
//
// Key handling: a protected call without any SC-API-KEY header gets 403 "Authentication
// credentials were not provided."; a wrong key, a revoked one, an empty one or more than one
// copy of the header gets 403 "Invalid API key.". A valid key on a route Options.Forbidden
// denies it gets 403 "You do not have permission to perform this action." (a permission
// refusal: the key itself stays good, and the call is recorded as Accepted). Keys are compared as SHA-256 digests in
// constant time, and the stand-in never stores a full key: the request log keeps only
// prefixes (see Prefix), so a test can assert that no secret ever reaches a log.
//
// All state (playlists, channels, schedule events created by POST) lives in memory and is lost
// with the Server. Response bodies are encoded once per object and concatenated per request,
// because the stand-in doubles as the upstream of scgate's benchmarks.
package standin
