package main

// `dm ls`, after docker-machine's commands/ls.go: machines are loaded one
// after the other (one plugin each), then queried concurrently with a
// timeout: GetURL; GetState only if the URL is "" or GetURL failed;
// DriverName. "Host is not running" from GetURL is not shown as an error.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"
)

const lsDefaultFormat = "table {{ .Name }}\t{{ .Active }}\t{{ .DriverName}}\t{{ .State }}\t{{ .URL }}\t{{ .Swarm }}\t{{ .DockerVersion }}\t{{ .Error}}"

var lsHeaders = map[string]string{
	"Name":          "NAME",
	"Active":        "ACTIVE",
	"ActiveHost":    "ACTIVE_HOST",
	"ActiveSwarm":   "ACTIVE_SWARM",
	"DriverName":    "DRIVER",
	"State":         "STATE",
	"URL":           "URL",
	"SwarmOptions":  "SWARM_OPTIONS",
	"Swarm":         "SWARM",
	"EngineOptions": "ENGINE_OPTIONS",
	"Error":         "ERRORS",
	"DockerVersion": "DOCKER",
	"ResponseTime":  "RESPONSE",
}

// HostListItem is one row of `ls`.
type HostListItem struct {
	Name          string
	Active        string
	ActiveHost    bool
	ActiveSwarm   bool
	DriverName    string
	State         State
	URL           string
	SwarmOptions  *SwarmOptions
	Swarm         string
	EngineOptions *EngineOptions
	Error         string
	DockerVersion string
	ResponseTime  time.Duration
}

// errHostIsNotRunning is drivers.ErrHostIsNotRunning's text.
const errHostIsNotRunning = "Host is not running"

type lsFilters struct {
	swarm, driver, state, name, label []string
}

func parseLsFilters(filters []string) (lsFilters, error) {
	var f lsFilters
	for _, s := range filters {
		kv := strings.SplitN(s, "=", 2)
		if len(kv) != 2 {
			return f, errors.New("Unsupported filter syntax.")
		}
		switch key, value := strings.ToLower(kv[0]), kv[1]; key {
		case "swarm":
			f.swarm = append(f.swarm, value)
		case "driver":
			f.driver = append(f.driver, value)
		case "state":
			f.state = append(f.state, value)
		case "name":
			f.name = append(f.name, value)
		case "label":
			f.label = append(f.label, value)
		default:
			return f, fmt.Errorf("Unsupported filter key '%s'", key)
		}
	}
	return f, nil
}

func (m *dm) filterHost(h *Host, f lsFilters, swarmMasters map[string]string) (bool, error) {
	anyOf := func(values []string, match func(string) (bool, error)) (bool, error) {
		if len(values) == 0 {
			return true, nil
		}
		for _, v := range values {
			ok, err := match(v)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	checks := []func() (bool, error){
		func() (bool, error) {
			return anyOf(f.swarm, func(v string) (bool, error) {
				so := h.HostOptions.SwarmOptions
				return so != nil && strings.EqualFold(v, swarmMasters[so.Discovery]), nil
			})
		},
		func() (bool, error) {
			return anyOf(f.driver, func(v string) (bool, error) { return strings.EqualFold(h.DriverName, v), nil })
		},
		func() (bool, error) {
			return anyOf(f.state, func(v string) (bool, error) {
				st, err := h.drv.GetState()
				if err != nil {
					m.log.Warnf("%s", err)
				}
				return strings.EqualFold(v, st.String()), nil
			})
		},
		func() (bool, error) {
			return anyOf(f.name, func(v string) (bool, error) {
				r, err := regexp.Compile(v)
				if err != nil {
					return false, err
				}
				return r.MatchString(h.drv.GetMachineName()), nil
			})
		},
		func() (bool, error) {
			return anyOf(f.label, func(v string) (bool, error) {
				kv := strings.SplitN(v, "=", 2)
				if h.HostOptions.EngineOptions == nil || len(kv) != 2 {
					return false, nil
				}
				for _, l := range h.HostOptions.EngineOptions.Labels {
					lkv := strings.SplitN(l, "=", 2)
					if len(lkv) == 2 && lkv[0] == kv[0] && strings.EqualFold(lkv[1], kv[1]) {
						return true, nil
					}
				}
				return false, nil
			})
		},
	}
	for _, c := range checks {
		if ok, err := c(); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (m *dm) cmdLs(args []string) error {
	fs, _, err := parseCommand("ls", []cliFlag{
		{Name: "quiet", Short: "q", Kind: kindBool, Usage: "Enable quiet mode"},
		{Name: "filter", Kind: kindSlice, Usage: "Filter output based on conditions provided"},
		{Name: "timeout", Short: "t", Kind: kindInt, DefInt: 10, Usage: "Timeout in seconds, default to 10s"},
		{Name: "format", Short: "f", Kind: kindString, Usage: "Pretty-print machines using a Go template"},
	}, args)
	if err != nil {
		return err
	}
	filters, err := parseLsFilters(fs.Slice("filter"))
	if err != nil {
		return err
	}
	names, err := m.store.List()
	if err != nil {
		return err
	}
	hosts := []*Host{}
	inError := map[string]error{}
	for _, name := range names {
		h, err := m.load(name)
		if err != nil {
			inError[name] = err
			continue
		}
		hosts = append(hosts, h)
	}

	swarmMasters := map[string]string{}
	for _, h := range hosts {
		if h.HostOptions != nil && h.HostOptions.SwarmOptions != nil && h.HostOptions.SwarmOptions.Master {
			swarmMasters[h.HostOptions.SwarmOptions.Discovery] = h.Name
		}
	}
	filtered := []*Host{}
	for _, h := range hosts {
		ok, err := m.filterHost(h, filters, swarmMasters)
		if err != nil {
			return err
		}
		if ok {
			filtered = append(filtered, h)
		}
	}
	hosts = filtered

	if fs.Bool("quiet") {
		for _, h := range hosts {
			fmt.Println(h.Name)
		}
		return nil
	}

	tmpl, table, err := parseLsFormat(fs.String("format"))
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if table {
		tw := tabwriter.NewWriter(os.Stdout, 5, 1, 3, ' ', 0)
		defer tw.Flush()
		w = tw
		if err := tmpl.Execute(w, lsHeaders); err != nil {
			return err
		}
	}
	items := m.hostListItems(hosts, inError, time.Duration(fs.Int("timeout"))*time.Second)
	for _, item := range items {
		if item.SwarmOptions != nil && item.SwarmOptions.Discovery != "" {
			item.Swarm = swarmMasters[item.SwarmOptions.Discovery]
			if item.SwarmOptions.Master {
				item.Swarm += " (master)"
			}
		}
		if err := tmpl.Execute(w, item); err != nil {
			return err
		}
	}
	return nil
}

func parseLsFormat(format string) (*template.Template, bool, error) {
	if format == "" {
		format = lsDefaultFormat
	}
	table := false
	if strings.HasPrefix(format, "table") {
		table = true
		format = format[len("table"):]
	}
	format = strings.Trim(format, " ")
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("").Parse(format + "\n")
	return tmpl, table, err
}

func (m *dm) attemptGetHostState(h *Host) HostListItem {
	begin := time.Now()
	state := StateNone
	hostError := ""
	u, err := h.drv.GetURL()
	if err == nil {
		if u != "" {
			// A URL means Running: docker-machine skips GetState here.
			state = StateRunning
		} else {
			state, err = h.drv.GetState()
		}
	} else {
		state, _ = h.drv.GetState()
	}
	dockerVersion := "Unknown"
	if err == nil && u != "" {
		// docker-machine asks the Docker daemon at the URL for its version
		// (TLS with the machine's client certificate). dmclient never
		// contacts the machine, so it reports what docker-machine reports
		// when the daemon cannot be reached.
		err = errors.New("Unable to query docker version: Cannot connect to the docker engine endpoint")
	}
	if err != nil {
		hostError = err.Error()
	}
	if hostError == errHostIsNotRunning {
		hostError = ""
	}
	var so *SwarmOptions
	var eo *EngineOptions
	if h.HostOptions != nil {
		so, eo = h.HostOptions.SwarmOptions, h.HostOptions.EngineOptions
	}
	dockerHost := os.Getenv("DOCKER_HOST")
	activeHost := state == StateRunning && u == dockerHost
	activeSwarm := false
	if so != nil && so.Master && state == StateRunning {
		activeSwarm = toSwarmURL(u, so.Host) == dockerHost
	}
	active := "-"
	if activeHost {
		active = "*"
	}
	if activeSwarm {
		active = "* (swarm)"
	}
	return HostListItem{
		Name:          h.Name,
		Active:        active,
		ActiveHost:    activeHost,
		ActiveSwarm:   activeSwarm,
		DriverName:    h.drv.DriverName(),
		State:         state,
		URL:           u,
		SwarmOptions:  so,
		EngineOptions: eo,
		DockerVersion: dockerVersion,
		Error:         hostError,
		ResponseTime:  time.Now().Round(time.Millisecond).Sub(begin.Round(time.Millisecond)),
	}
}

func toSwarmURL(hostURL, swarmHost string) string {
	port := func(s string) string { parts := strings.Split(s, ":"); return parts[len(parts)-1] }
	return strings.Replace(hostURL, ":"+port(hostURL), ":"+port(swarmHost), 1)
}

func (m *dm) hostListItems(hosts []*Host, inError map[string]error, timeout time.Duration) []HostListItem {
	m.log.Debugf("timeout set to %s", timeout)
	ch := make(chan HostListItem)
	for _, h := range hosts {
		go func(h *Host) {
			result := make(chan HostListItem, 1)
			go func() { result <- m.attemptGetHostState(h) }()
			select {
			case item := <-result:
				ch <- item
			case <-time.After(timeout):
				ch <- HostListItem{Name: h.Name, DriverName: h.drv.DriverName(), State: StateTimeout, ResponseTime: timeout}
			}
		}(h)
	}
	items := []HostListItem{}
	for range hosts {
		items = append(items, <-ch)
	}
	for name, err := range inError {
		items = append(items, HostListItem{Name: name, DriverName: "not found", State: StateError,
			Error: strings.Replace(err.Error(), "\n", " ", -1)})
	}
	sort.SliceStable(items, func(i, j int) bool {
		return naturalLess(strings.ToLower(items[i].Name), strings.ToLower(items[j].Name))
	})
	return items
}

// naturalLess orders names with embedded numbers numerically ("m2" < "m10").
func naturalLess(a, b string) bool {
	chunk := func(s string) (string, string) {
		if s == "" {
			return "", ""
		}
		digit := unicode.IsDigit(rune(s[0]))
		i := 0
		for i < len(s) && unicode.IsDigit(rune(s[i])) == digit {
			i++
		}
		return s[:i], s[i:]
	}
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if ca != cb {
			na, errA := strconv.ParseUint(ca, 10, 64)
			nb, errB := strconv.ParseUint(cb, 10, 64)
			if errA == nil && errB == nil && na != nb {
				return na < nb
			}
			return ca < cb
		}
		a, b = ra, rb
	}
	return a == "" && b != ""
}
