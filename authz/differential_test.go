package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDifferentialCacheNeverStale runs random writes, state changes and clock
// moves; after each step the cached answer for every (subject, device,
// action) must equal a fresh evaluation. A stale cache entry after any write
// fails it.
func TestDifferentialCacheNeverStale(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { differential(t, seed, 120) })
	}
}

func differential(t *testing.T, seed uint64, steps int) {
	h := newMemHarness(t)
	h.base()
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	h.must(root, "PUT", "/orgs/prov", map[string]any{})
	h.must(root, "PUT", "/subjects/monco", map[string]any{"kind": "company", "sites": []string{"hq"}})
	h.must(root, "PUT", "/subjects/emp", map[string]any{"kind": "employee", "company": "monco", "rights": []string{"live", "archive"}})
	h.must(root, "PUT", "/subjects/integ", map[string]any{"kind": "integrator", "org": "prov"})
	h.must(root, "PUT", "/subjects/inst", map[string]any{"kind": "installer", "sites": []string{"lobby"}})
	h.must(root, "PUT", "/groups/crew", map[string]any{"members": []string{"alice"}})
	h.must(root, "PUT", "/devices/motion1", map[string]any{"site": "lobby", "kind": "motion_cam"})
	subjects := []string{"alice", "bob", "monco", "emp", "integ", "inst"}
	principals := append([]string{"crew"}, subjects...)
	devices := []string{"cam1", "cam2", "motion1"}
	sites := []string{"hq", "lobby"}
	roles := []string{"no_access", "live_only_viewer", "site_viewer", "site_admin"}
	actions := []string{"live", "archive", "download", "sound", "ptz", "share", "photo_on_demand", "photo_view"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	some := func(xs []string) []string {
		var out []string
		for _, x := range xs {
			if rng.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	var shareIDs []string
	iv := h.subscribe()
	snapshot := func() map[[3]string]Decision {
		out := map[[3]string]Decision{}
		now := h.clk.Now()
		for _, s := range subjects {
			for _, d := range devices {
				for i := range NumActions {
					a := Action(1) << i
					out[[3]string{s, d, a.String()}] = h.s.EvaluateFreshForTest(s, d, a, now, -1)
				}
			}
		}
		return out
	}
	for step := range steps {
		before, revBefore := snapshot(), h.s.RevForTest()
		var desc string
		switch op := rng.IntN(14); op {
		case 0, 1, 2: // a grant with random target, actions or role, condition, validity, schedule
			g := map[string]any{"subject": pick(principals)}
			if rng.IntN(2) == 0 {
				g["device"] = pick(devices)
			} else {
				g["site"] = pick(sites)
			}
			if rng.IntN(3) == 0 {
				g["role"] = pick(roles)
			} else {
				g["actions"] = append(some(actions), "live")
			}
			if g["subject"] == "monco" && rng.IntN(2) == 0 {
				g["condition"] = "after_alarm"
			} else if rng.IntN(4) == 0 {
				g["condition"] = "armed"
			}
			now := h.clk.Now()
			switch rng.IntN(4) {
			case 0:
				g["not_after"] = now.Add(time.Duration(rng.IntN(180)) * time.Minute)
			case 1:
				g["not_before"] = now.Add(time.Duration(rng.IntN(180)) * time.Minute)
			case 2:
				g["schedule"] = []map[string]any{{"days": []string{"mon", "wed", "sat"}, "from": "09:00", "to": "17:30", "tz": "Europe/Kyiv"}}
			}
			_, err := h.call(root, "PUT", fmt.Sprintf("/grants/g%d", rng.IntN(8)), g)
			desc = fmt.Sprintf("grant %v: %v", g, err)
		case 3:
			_, err := h.call(root, "DELETE", fmt.Sprintf("/grants/g%d", rng.IntN(8)), nil)
			desc = fmt.Sprint("delete grant: ", err)
		case 4:
			verb := "arm"
			if rng.IntN(2) == 0 {
				verb = "disarm"
			}
			desc = verb
			h.must(root, "POST", "/sites/"+pick(sites)+"/"+verb, nil)
		case 5:
			desc = "alarm"
			h.must(root, "POST", "/devices/"+pick(devices)+"/alarm", nil)
		case 6:
			desc = "allow-provider"
			h.must(root, "POST", "/orgs/acme/allow-provider", nil)
		case 7:
			desc = "group members"
			h.must(root, "PUT", "/groups/crew", map[string]any{"members": some(subjects)})
		case 8:
			desc = "bulk"
			_, err := h.call(root, "POST", "/bulk-access", map[string]any{"subjects": []string{pick([]string{"alice", "bob"})}, "devices": some(devices), "actions": some(actions)})
			desc += fmt.Sprint(err)
		case 9:
			desc = "employee rights"
			h.must(root, "PUT", "/subjects/emp", map[string]any{"kind": "employee", "company": "monco", "rights": some(actions)})
		case 10:
			desc = "privacy managers / photos"
			site := map[string]any{"org": "acme", "privacy_managers": some([]string{"alice", "bob"}), "photos_on_demand": rng.IntN(2) == 0}
			id := pick(sites)
			if id == "lobby" && rng.IntN(2) == 0 {
				site["parent"] = "hq" // else lobby moves to the top of the tree
			}
			h.must(root, "PUT", "/sites/"+id, site)
		case 11:
			desc = "share"
			res, err := h.call(root, "POST", "/shares", map[string]any{"device": "cam1", "owner": "alice", "recipient_email": "bob@example.com",
				"actions": []string{"live", "archive"}, "active_until": h.clk.Now().Add(time.Duration(rng.IntN(300)) * time.Minute)})
			if err == nil {
				shareIDs = append(shareIDs, res.Body.(*Share).ID)
			}
		case 12:
			if len(shareIDs) > 0 {
				verb := pick([]string{"accept", "reject"})
				desc = "share " + verb
				h.must(viewer("bob"), "POST", "/shares/"+pick(shareIDs)+"/"+verb, nil)
			}
		default:
			d := time.Duration(rng.IntN(240)) * time.Minute
			desc = "clock +" + d.String()
			h.clk.Add(d)
		}
		// Every decision a write changed is named by that write's invalidations,
		// so a session registry re-checking on them misses nothing.
		var invs []Invalidation
		for h.s.RevForTest() > revBefore && (len(invs) == 0 || invs[len(invs)-1].Rev < h.s.RevForTest()) {
			invs = append(invs, iv.next(t))
		}
		if h.s.RevForTest() > revBefore {
			for k, was := range before {
				now := h.clk.Now()
				a, _ := ParseAction(k[2])
				is := h.s.EvaluateFreshForTest(k[0], k[1], a, now, -1)
				named := false
				for i := range invs {
					named = named || invs[i].Affects(k[0], k[1])
				}
				if (is.Allowed != was.Allowed || !is.ValidUntil.Equal(was.ValidUntil)) && !named {
					t.Fatalf("step %d (%s): %v changed %+v → %+v but no invalidation names it: %+v", step, desc, k, was, is, invs)
				}
			}
		}
		now := h.clk.Now()
		for _, s := range subjects {
			for _, d := range devices {
				for i := range NumActions {
					a := Action(1) << i
					got := h.s.Check(s, d, a, now)
					want := h.s.EvaluateFreshForTest(s, d, a, now, -1)
					if got.Allowed != want.Allowed || !got.ValidUntil.Equal(want.ValidUntil) {
						t.Fatalf("step %d (%s): %s %s %v cached %+v; fresh %+v", step, desc, s, d, a, got, want)
					}
				}
			}
		}
	}
}
