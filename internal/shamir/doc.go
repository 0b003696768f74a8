// Package shamir splits a secret into n shares of which any m recover it
// and fewer reveal nothing about it: Shamir's secret sharing ("How to
// share a secret", Comm. ACM 22(11), 1979), byte by byte over GF(2^8) with
// the AES polynomial x^8 + x^4 + x^3 + x + 1 (FIPS 197, §4.2).
//
// A share is len(secret)+1 bytes: for each secret byte, the value at x of
// a random polynomial of degree m-1 whose constant term is that byte;
// then x itself (non-zero, distinct among the shares of one split). This
// is the layout of keyfleet's kfbg1 break-glass shares since the first
// release, so shares made then still combine
// (testdata/kfbg1-vault-split.json).
//
// Field arithmetic on secret bytes takes the same time whatever their
// values: no table lookups, no branches on them.
package shamir
