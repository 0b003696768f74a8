// Package strictjson reads JSON request bodies one way only, for the API
// (daemon/httpapi) and the pages' script requests (daemon/web) alike.
//
// encoding/json takes the last of two equal keys and matches keys to
// fields without regard to case, so {"roles":["user"],"Roles":["admin"]}
// would be read as admin. A proxy, a log or a second parser may read the
// same body the other way (RFC 8259 §4 leaves duplicate names undefined).
// Decode refuses what could be read two ways: unknown fields, data after
// the value, a key named twice in one object, and a key that matches a
// field only by case. Callers map its errors to their own answers.
package strictjson
