package archive

// Prune applies retention now: segments that ended more than Retention ago
// are deleted, then the oldest ones while our segments exceed MaxBytes.
// Imported (mediamtx) segments are never deleted. It returns how many
// segments were deleted.
func (s *Store) Prune() int {
	cams, segs, total := s.index.expired(s.Now().Add(-s.Retention), s.MaxBytes)
	gone := make(map[string]map[int64]bool)
	deleted := 0
	for i, sg := range segs {
		if err := s.root.Remove(cams[i] + "/" + sg.name()); err != nil && !isNotExist(err) {
			s.Logger.Warn("archive: retention cannot delete segment", "camera", cams[i], "segment", sg.name(), "error", err)
			continue
		}
		if gone[cams[i]] == nil {
			gone[cams[i]] = make(map[int64]bool)
		}
		gone[cams[i]][sg.Start.UnixNano()] = true
		total -= sg.Size
		deleted++
	}
	touched := make(map[string]bool, len(gone))
	for cam, starts := range gone {
		s.index.removeOwn(cam, starts)
		touched[cam] = true
	}
	for i, sg := range segs {
		if gone[cams[i]][sg.Start.UnixNano()] {
			s.published(cams[i], sg, true)
		}
	}
	s.compactIndexFiles(touched)
	if deleted > 0 {
		s.Logger.Info("archive: retention deleted segments", "count", deleted, "bytes_left", total)
	}
	return deleted
}
