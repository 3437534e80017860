package main

// Console output the way docker-machine's libmachine/log prints it: Info and
// Warn lines on stdout, Error lines on stderr, Debug lines on stderr only
// with --debug (or MACHINE_DEBUG).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

type console struct {
	mu    sync.Mutex
	out   io.Writer
	err   io.Writer
	debug bool
}

func newConsole(debug bool) *console {
	return &console{out: os.Stdout, err: os.Stderr, debug: debug}
}

// quietConsole discards everything (role 1 reports in JSON instead).
func quietConsole() *console {
	return &console{out: io.Discard, err: io.Discard}
}

// redirectInfoToStderr mirrors log.SetOutWriter(os.Stderr), which `config`
// does so that its stdout holds only the connection flags.
func (c *console) redirectInfoToStderr() {
	c.mu.Lock()
	c.out = c.err
	c.mu.Unlock()
}

func (c *console) write(w func() io.Writer, format string, args []interface{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(w(), format+"\n", args...)
}

func (c *console) Infof(format string, args ...interface{}) {
	c.write(func() io.Writer { return c.out }, format, args)
}

func (c *console) Warnf(format string, args ...interface{}) {
	c.write(func() io.Writer { return c.out }, format, args)
}

func (c *console) Errorf(format string, args ...interface{}) {
	c.write(func() io.Writer { return c.err }, format, args)
}

func (c *console) Debugf(format string, args ...interface{}) {
	if c.debug {
		c.write(func() io.Writer { return c.err }, format, args)
	}
}

// ReemitJSON is GitLab's fork's handling of a plugin output line in json
// mode: a line that is a JSON object is re-emitted as one JSON object with its
// fields plus "machine", at its own "level" (defaultLevel without one): info
// and warning on stdout, error on stderr, debug and trace on stderr with
// --debug only. It reports whether the line was JSON.
func (c *console) ReemitJSON(machine, line, defaultLevel string) bool {
	var fields map[string]interface{}
	if json.Unmarshal([]byte(line), &fields) != nil || fields == nil {
		return false
	}
	fields["machine"] = machine
	level, _ := fields["level"].(string)
	if level == "" {
		level = defaultLevel
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return false
	}
	switch level {
	case "debug", "trace":
		if c.debug {
			c.write(func() io.Writer { return c.err }, "%s", []interface{}{out})
		}
	case "error", "fatal", "panic":
		c.write(func() io.Writer { return c.err }, "%s", []interface{}{out})
	default:
		c.write(func() io.Writer { return c.out }, "%s", []interface{}{out})
	}
	return true
}
