package archive

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The compact index answers as a plain sorted list of Segments would,
// through random adds, replacements, removals, import rescans and
// retention, and keeps its byte count of our own segments exact.
func TestIndexMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := newIndex()
	model := map[string][]Segment{} // sorted by Start, one per Start
	cams := []string{"a", "b", "c"}
	seg := func(src int) Segment {
		st := t0.Add(time.Duration(rng.IntN(200)) * 10 * time.Second).Add(time.Duration(rng.IntN(1e9)) * time.Nanosecond)
		sg := Segment{Start: st.Truncate(time.Microsecond), Duration: time.Duration(1+rng.IntN(20)) * time.Second, Size: 1 + rng.Int64N(1<<20), tracks: rng.Uint64(), src: src}
		if src == 0 {
			sg.stem = sg.Start.UnixMicro() - int64(rng.IntN(2)) // a scan may refine Start from the NTP time
		} else {
			sg.file = "import-" + SegmentName(sg.Start) + ".mp4"
		}
		return sg
	}
	put := func(cam string, sg Segment) {
		list := model[cam]
		i, found := slices.BinarySearchFunc(list, sg, func(a, b Segment) int { return a.Start.Compare(b.Start) })
		if found {
			list[i] = sg
		} else {
			list = slices.Insert(list, i, sg)
		}
		model[cam] = list
	}
	check := func(step int) {
		t.Helper()
		var own int64
		for _, cam := range cams {
			got := x.rangeOf(cam, time.Time{}, maxTime)
			if len(got) != len(model[cam]) {
				t.Fatalf("step %d, %s: %d segments, want %d", step, cam, len(got), len(model[cam]))
			}
			for i, sg := range got {
				want := model[cam][i]
				if !sg.Start.Equal(want.Start) || sg.Duration != want.Duration || sg.Size != want.Size || sg.tracks != want.tracks ||
					sg.src != want.src || sg.name() != want.name() {
					t.Fatalf("step %d, %s[%d]: %+v, want %+v", step, cam, i, sg, want)
				}
				if sg.src == 0 {
					own += sg.Size
				}
			}
		}
		if x.ownBytes != own {
			t.Fatalf("step %d: ownBytes %d, want %d", step, x.ownBytes, own)
		}
		for _, cam := range cams {
			n := 0
			for _, sg := range model[cam] {
				if sg.src == 0 {
					n++
				}
			}
			if got := x.ownCount(cam); got != n {
				t.Fatalf("step %d, %s: ownCount %d, want %d", step, cam, got, n)
			}
			// What the shared index's Sync compares: count and ends.
			if got, first, last := (ownView{x}).Ends(cam); got != n ||
				(n > 0 && (!first.Start.Equal(ownOf(model[cam])[0].Start) || !last.Start.Equal(ownOf(model[cam])[n-1].Start))) {
				t.Fatalf("step %d, %s: Ends gives %d, %v, %v", step, cam, got, first.Start, last.Start)
			}
		}
	}
	for step := range 3000 {
		cam := cams[rng.IntN(len(cams))]
		switch op := rng.IntN(10); {
		case op < 6:
			sg := seg(0)
			x.put(cam, sg)
			put(cam, sg)
		case op < 8:
			if list := model[cam]; len(list) > 0 {
				sg := list[rng.IntN(len(list))]
				x.remove(cam, sg)
				model[cam] = slices.DeleteFunc(list, func(m Segment) bool { return m.Start.Equal(sg.Start) && m.src == sg.src })
			}
		case op < 9:
			// An import rescan: its segments replaced, ours kept (and
			// winning at the same instant).
			imports := map[string][]Segment{}
			for _, c := range cams {
				for range rng.IntN(4) {
					imports[c] = append(imports[c], seg(1))
				}
				model[c] = slices.DeleteFunc(model[c], func(m Segment) bool { return m.src == 1 })
			}
			x.replaceSource(1, imports)
			for c, list := range imports {
				for _, sg := range list {
					i, found := slices.BinarySearchFunc(model[c], sg, func(a, b Segment) int { return a.Start.Compare(b.Start) })
					if !found {
						model[c] = slices.Insert(model[c], i, sg)
					}
				}
			}
		default:
			// Retention, by age and by a budget.
			horizon := t0.Add(time.Duration(rng.IntN(300)) * time.Second)
			budget := rng.Int64N(50 << 20)
			cs, segs, total := x.expired(horizon, budget)
			if total != x.ownBytes {
				t.Fatalf("step %d: expired's total %d, ownBytes %d", step, total, x.ownBytes)
			}
			checkExpired(t, model, horizon, budget, total, segs)
			gone := map[string]map[int64]bool{}
			for i, sg := range segs {
				if gone[cs[i]] == nil {
					gone[cs[i]] = map[int64]bool{}
				}
				gone[cs[i]][sg.Start.UnixNano()] = true
			}
			for c, starts := range gone {
				x.removeOwn(c, starts)
				model[c] = slices.DeleteFunc(model[c], func(m Segment) bool { return m.src == 0 && starts[m.Start.UnixNano()] })
			}
		}
		check(step)
	}
}

// checkExpired asserts that retention picked exactly our own segments,
// oldest first, while they are older than horizon or over budget.
func checkExpired(t *testing.T, model map[string][]Segment, horizon time.Time, budget, total int64, got []Segment) {
	t.Helper()
	var own []Segment
	for _, list := range model {
		for _, sg := range list {
			if sg.src == 0 {
				own = append(own, sg)
			}
		}
	}
	slices.SortStableFunc(own, func(a, b Segment) int { return a.Start.Compare(b.Start) })
	var want []Segment
	for _, sg := range own {
		if !sg.End().Before(horizon) && total <= budget {
			break
		}
		want = append(want, sg)
		total -= sg.Size
	}
	if len(got) != len(want) {
		t.Fatalf("retention picked %d segments, want %d", len(got), len(want))
	}
	for i := range got {
		if !got[i].Start.Equal(want[i].Start) {
			t.Fatalf("retention's %d-th pick starts %v, want %v", i, got[i].Start, want[i].Start)
		}
	}
}

// ownOf is list without imports.
func ownOf(list []Segment) []Segment {
	return slices.DeleteFunc(slices.Clone(list), func(s Segment) bool { return s.src != 0 })
}
