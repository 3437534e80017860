package main

// State mirrors docker-machine's libmachine/state.State: the GetState reply.
type State int

// The states, in docker-machine's order (GetState sends the int).
const (
	StateNone State = iota
	StateRunning
	StatePaused
	StateSaved
	StateStopped
	StateStopping
	StateStarting
	StateError
	StateTimeout
)

var stateNames = []string{"", "Running", "Paused", "Saved", "Stopped", "Stopping", "Starting", "Error", "Timeout"}

// String is the name docker-machine prints; out-of-range values print as "".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return ""
}
