package archive

import (
	"slices"
)

// Prune applies retention now: segments that ended more than Retention ago
// are deleted, then the oldest ones while our segments exceed MaxBytes.
// Imported (mediamtx) segments are never deleted. It returns how many
// segments were deleted.
func (s *Store) Prune() int {
	cams, segs := s.index.own()
	order := make([]int, len(segs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return segs[a].Start.Compare(segs[b].Start) })
	var total int64
	for _, sg := range segs {
		total += sg.Size
	}
	horizon := s.Now().Add(-s.Retention)
	deleted := 0
	touched := make(map[string]bool)
	for _, i := range order {
		old := segs[i].End().Before(horizon)
		over := s.MaxBytes > 0 && total > s.MaxBytes
		if !old && !over {
			break
		}
		path := cams[i] + "/" + segs[i].name
		if err := s.root.Remove(path); err != nil && !isNotExist(err) {
			s.Logger.Warn("archive: retention cannot delete segment", "camera", cams[i], "segment", segs[i].name, "error", err)
			continue
		}
		s.index.remove(cams[i], segs[i])
		touched[cams[i]] = true
		s.published(cams[i], segs[i], true)
		total -= segs[i].Size
		deleted++
	}
	s.compactIndexFiles(touched)
	if deleted > 0 {
		s.Logger.Info("archive: retention deleted segments", "count", deleted, "bytes_left", total)
	}
	return deleted
}
