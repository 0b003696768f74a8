package postgres

import (
	"fmt"
	"strings"
)

// table is one record table: a key column k, index columns, and the
// sealed record rec. Its statements are built once.
type table struct {
	name string
	cols []string

	get, getLock, upsert, insert, update, del, delIf string
}

func newTable(name string, cols ...string) *table {
	t := &table{name: name, cols: cols}
	all := append(append([]string{"k"}, cols...), "rec")
	ph := make([]string, len(all))
	set := make([]string, 0, len(all))
	assign := make([]string, 0, len(all))
	for i, c := range all {
		ph[i] = fmt.Sprintf("$%d", i+1)
		if i > 0 {
			set = append(set, c+" = EXCLUDED."+c)
			assign = append(assign, fmt.Sprintf("%s = $%d", c, i+1))
		}
	}
	insert := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", name, strings.Join(all, ", "), strings.Join(ph, ", "))
	t.get = "SELECT xmin::text, rec FROM " + name + " WHERE k = $1"
	t.getLock = t.get + " FOR UPDATE"
	t.upsert = insert + " ON CONFLICT (k) DO UPDATE SET " + strings.Join(set, ", ")
	t.insert = insert + " ON CONFLICT DO NOTHING"
	t.update = fmt.Sprintf("UPDATE %s SET %s WHERE k = $1 AND xmin::text = $%d", name, strings.Join(assign, ", "), len(all)+1)
	t.del = "DELETE FROM " + name + " WHERE k = $1"
	t.delIf = "DELETE FROM " + name + " WHERE k = $1 AND xmin::text = $2"
	return t
}

// The record tables (migrations/00001_initial.sql).
var (
	tUsers         = newTable("users", "name_hash", "name", "status")
	tFactors       = newTable("factors", "user_id", "device_id", "state", "kind")
	tDevices       = newTable("devices", "vs_hash", "serial_hash", "user_id", "state")
	tEnrolments    = newTable("enrolments", "user_id", "state")
	tTokens        = newTable("tokens", "user_id")
	tApprovals     = newTable("approvals", "state", "requested_by")
	tVerifications = newTable("verifications", "expires")
	tRecCodes      = newTable("recovery_codes")
	tRecCases      = newTable("recovery_cases", "user_id", "state")
	tPasses        = newTable("access_passes", "code_hash")
	tSingletons    = newTable("singletons")
	tPolicyVers    = newTable("policy_versions")
	tPolicyDrafts  = newTable("policy_drafts")
	tFirstApplied  = newTable("first_applied")
)

// Keys of the singletons table.
const (
	kBreakGlass = "breakglass"
	kPolicyHead = "policy_head"
)
