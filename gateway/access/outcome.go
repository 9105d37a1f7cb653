package access

// Outcome is the typed result of one admission, counted by the metrics.
type Outcome uint8

// Admission outcomes.
const (
	OutcomeAllowed Outcome = iota
	OutcomeDenied
	OutcomeUnauthenticated
	OutcomeUnknownCamera
	OutcomeUnavailable
	OutcomeRateLimited
)

// Outcomes lists every outcome, in metric order.
var Outcomes = []Outcome{OutcomeAllowed, OutcomeDenied, OutcomeUnauthenticated, OutcomeUnknownCamera, OutcomeUnavailable, OutcomeRateLimited}

func (o Outcome) String() string {
	switch o {
	case OutcomeAllowed:
		return "allowed"
	case OutcomeDenied:
		return "denied"
	case OutcomeUnauthenticated:
		return "unauthenticated"
	case OutcomeUnknownCamera:
		return "unknown_camera"
	case OutcomeUnavailable:
		return "unavailable"
	case OutcomeRateLimited:
		return "rate_limited"
	}
	return "other"
}

// Counters is what access tells the metrics. Implementations must be
// cheap (an atomic add) and safe for concurrent use.
type Counters interface {
	// Admission counts one admission of a live session by outcome.
	Admission(Outcome)
	// LinkVerification counts one use of a link token by outcome
	// (allowed, denied, or unauthenticated for an invalid token).
	LinkVerification(Outcome)
}

type noCounters struct{}

func (noCounters) Admission(Outcome)        {}
func (noCounters) LinkVerification(Outcome) {}
