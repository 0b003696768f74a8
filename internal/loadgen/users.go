package loadgen

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyfleet/keyfleet/api"
)

// CreateUsers creates n users named prefix-N (POST /v1/users, one each:
// a user and its audit event, durable before the answer) from clients
// at once.
func CreateUsers(ctx context.Context, admin *Client, prefix string, n, clients int) Result {
	bodies := make([][]byte, n)
	for i := range bodies {
		name := fmt.Sprintf("%s-%d", prefix, i)
		bodies[i], _ = json.Marshal(api.CreateUser{Username: name, Email: name + "@users.example", Groups: []string{"loadgen"}})
	}
	return Run(ctx, n, clients, func(ctx context.Context, i int) error {
		return admin.DoRaw(ctx, "POST", "/v1/users", bodies[i], nil)
	})
}

// Population describes the users ImportPopulation makes: names, emails
// and groups spread so that filters have something to find.
type Population struct {
	Users  int    // how many
	Prefix string // usernames are Prefix-NNNNNNN (default "u")
	// Batch is how many users one import carries (default 1000: an import
	// is one transaction, and at keyfleetd's default store.memory the
	// store takes about 1,400 new users in one).
	Batch int
}

// Groups are the groups imported users belong to: every user is in one
// department; one in a hundred is also in "contractors" and one in ten
// thousand in "auditors-2026".
var departments = []string{"engineering", "sales", "finance", "support", "operations", "legal", "marketing", "research"}

// PopulationUser is the i-th user of a population.
func (p Population) PopulationUser(i int) api.CreateUser {
	prefix := p.Prefix
	if prefix == "" {
		prefix = "u"
	}
	name := fmt.Sprintf("%s-%07d", prefix, i)
	groups := []string{departments[i%len(departments)]}
	if i%100 == 7 {
		groups = append(groups, "contractors")
	}
	if i%10000 == 77 {
		groups = append(groups, "auditors-2026")
	}
	return api.CreateUser{Username: name, DisplayName: fmt.Sprintf("User %07d", i), Email: name + "@corp.example", Groups: groups}
}

// ImportPopulation imports the population (POST /v1/users/import),
// batch after batch; progress is told how many users are in.
func ImportPopulation(ctx context.Context, admin *Client, p Population, from int, progress func(done int)) error {
	if p.Batch <= 0 {
		p.Batch = 1000
	}
	for start := from; start < p.Users; start += p.Batch {
		in := api.ImportUsers{}
		for i := start; i < min(start+p.Batch, p.Users); i++ {
			in.Users = append(in.Users, p.PopulationUser(i))
		}
		var res api.ImportResult
		if err := admin.Do(ctx, "POST", "/v1/users/import", in, &res); err != nil {
			return fmt.Errorf("importing users %d to %d: %w", start, start+len(in.Users)-1, err)
		}
		if progress != nil {
			progress(start + len(in.Users))
		}
	}
	return nil
}
