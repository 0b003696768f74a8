// Package scim is keyfleet's SCIM 2.0 service provider (RFC 7643, RFC
// 7644) under /scim/v2: identity providers such as Entra ID and Okta push
// the users and groups of an application to it. A client authenticates
// with a keyfleet token of a service account that carries the scim role
// and nothing else, and sees and changes only its own users and groups
// (source scim:<account>); users made by hand stay out of its reach until
// an operator links them. Through core it follows keyfleet's rules: a role
// a group gives waits for a second person's approval, active=false and
// DELETE disable the user at once and suspend their factors, and nobody
// is deleted for good without two people. Filters are parsed by
// github.com/scim2/filter-parser; errors are SCIM error messages
// (errors.go), ETags weak hashes of the representation.
package scim
