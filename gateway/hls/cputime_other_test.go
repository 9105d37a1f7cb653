//go:build !unix

package hls

import "time"

func processCPU() time.Duration { return 0 }
