package main

// Role 1: `dmclient conformance` starts a plugin exactly as docker-machine
// does and runs a scripted tour of the RPC protocol (PROTOCOL.md), printing
// one JSON report on stdout.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"reflect"
	"sync"
	"time"

	"dmclient/drivers"
	"dmclient/mcnflag"
	"dmclient/rpcdriver"
)

type confStep struct {
	Method string      `json:"method"`
	Reply  interface{} `json:"reply"`
	Error  *string     `json:"error"`
	// ErrorType: "server" for an rpc.ServerError (the plugin's error
	// string), "client" for a client-side failure, "timeout".
	ErrorType string  `json:"error_type,omitempty"`
	Ms        float64 `json:"ms"`
}

type flagReport struct {
	Type   string      `json:"type"`
	Name   string      `json:"name"`
	Usage  string      `json:"usage"`
	EnvVar string      `json:"envvar"`
	Value  interface{} `json:"value"`
}

type configFromFlagsReport struct {
	Entries int                    `json:"entries"`
	Values  map[string]interface{} `json:"values"`
	Error   *string                `json:"error"`
}

type roundTripReport struct {
	Equal  bool        `json:"equal"`
	Sent   string      `json:"sent"`
	Second interface{} `json:"second"`
	Error  *string     `json:"error"`
}

type heartbeatSample struct {
	Ms               float64 `json:"ms"`
	Error            *string `json:"error"`
	SlowStillPending bool    `json:"slow_call_pending"`
}

type slowCallReport struct {
	Method               string            `json:"method"`
	Endpoint             string            `json:"endpoint"`
	Heartbeats           []heartbeatSample `json:"heartbeats"`
	MaxHeartbeatMs       float64           `json:"max_heartbeat_ms"`
	StillPending         bool              `json:"still_pending"`
	FinishedError        *string           `json:"finished_error"`
	FinishedAfterMs      *float64          `json:"finished_after_ms"`
	BlackholeConnections int               `json:"blackhole_connections"`
}

type closeReport struct {
	Error *string `json:"error"`
	// Exited is false when the plugin was still running 10 s after Close
	// (it is then killed).
	Exited                bool     `json:"exited"`
	ExitCode              *int     `json:"exit_code"`
	ExitAfterCloseReplyMs *float64 `json:"exit_after_close_reply_ms"`
}

type confReport struct {
	Exec                 string                 `json:"exec"`
	Driver               string                 `json:"driver"`
	Store                string                 `json:"store"`
	Address              string                 `json:"address"`
	ExecToAddressMs      float64                `json:"exec_to_address_ms"`
	Fatal                string                 `json:"fatal,omitempty"`
	Steps                []confStep             `json:"steps"`
	CreateFlags          []flagReport           `json:"create_flags"`
	SetConfigFromFlags   *configFromFlagsReport `json:"set_config_from_flags"`
	ConfigRaw            interface{}            `json:"config_raw"`
	ConfigRoundTrip      *roundTripReport       `json:"config_roundtrip"`
	SlowCall             *slowCallReport        `json:"slow_call"`
	Close                *closeReport           `json:"close"`
	BackgroundHeartbeats int                    `json:"background_heartbeats"`
	PluginStdout         []string               `json:"plugin_stdout"`
	PluginStdoutLines    int                    `json:"plugin_stdout_lines"`
	PluginStderrHead     []string               `json:"plugin_stderr_head"`
	PluginStderrLines    int                    `json:"plugin_stderr_lines"`
	PluginScanErrors     []string               `json:"plugin_scan_errors"`
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}

func msBetween(a, b time.Time) float64 {
	return float64(b.Sub(a).Microseconds()) / 1000
}

func errPtr(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

type tour struct {
	rep     *confReport
	client  *rpc.Client
	timeout time.Duration
}

// call runs one RPC (bounded by the tour's timeout so that a hung plugin
// cannot hang the tour), records it as a step and returns its error.
func (t *tour) call(label, serviceMethod string, args, reply interface{}, show func() interface{}) error {
	start := time.Now()
	c := t.client.Go(serviceMethod, args, reply, make(chan *rpc.Call, 1))
	step := confStep{Method: label}
	var err error
	select {
	case <-c.Done:
		err = c.Error
		if _, ok := err.(rpc.ServerError); ok {
			step.ErrorType = "server"
		} else if err != nil {
			step.ErrorType = "client"
		}
	case <-time.After(t.timeout):
		err = fmt.Errorf("no reply within %s", t.timeout)
		step.ErrorType = "timeout"
	}
	step.Ms = msSince(start)
	step.Error = errPtr(err)
	if err == nil && show != nil {
		step.Reply = show()
	}
	t.rep.Steps = append(t.rep.Steps, step)
	return err
}

func (t *tour) v1(method string) string { return serviceV1 + "." + method }

func reportFlags(flags []mcnflag.Flag) []flagReport {
	out := []flagReport{}
	for _, f := range flags {
		switch t := f.(type) {
		case *mcnflag.StringFlag:
			out = append(out, flagReport{"string", t.Name, t.Usage, t.EnvVar, t.Value})
		case *mcnflag.IntFlag:
			out = append(out, flagReport{"int", t.Name, t.Usage, t.EnvVar, t.Value})
		case *mcnflag.BoolFlag:
			out = append(out, flagReport{"bool", t.Name, t.Usage, t.EnvVar, nil})
		case *mcnflag.StringSliceFlag:
			var v interface{}
			if t.Value != nil {
				v = t.Value
			}
			out = append(out, flagReport{"stringslice", t.Name, t.Usage, t.EnvVar, v})
		}
	}
	return out
}

func parseJSON(b []byte) (interface{}, error) {
	var v interface{}
	err := json.Unmarshal(b, &v)
	return v, err
}

// blackhole accepts TCP connections and never answers.
type blackhole struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newBlackhole() (*blackhole, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &blackhole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	}()
	return b, nil
}

func (b *blackhole) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *blackhole) close() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
}

func runConformance(args []string) int {
	fl := flag.NewFlagSet("conformance", flag.ContinueOnError)
	execPath := fl.String("exec", "", "plugin binary to start (required)")
	driver := fl.String("driver", "ec2spot", "driver name given to the plugin in MACHINE_PLUGIN_DRIVER_NAME")
	store := fl.String("store", "", "StorePath sent in SetConfigRaw (default: a new temporary directory)")
	flagsJSON := fl.String("flags", "", "JSON object of SetConfigFromFlags overrides, e.g. '{\"amazonec2-vpc-id\":\"vpc-1\"}'")
	heartbeat := fl.Duration("heartbeat", defaultHeartbeat, "background heartbeat interval (docker-machine: 5s)")
	timeout := fl.Duration("call-timeout", 10*time.Second, "give up waiting for one RPC reply after this long")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *execPath == "" {
		fmt.Fprintln(os.Stderr, "conformance: -exec is required")
		return 2
	}
	if *store == "" {
		dir, err := os.MkdirTemp("", "dmclient-store-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		*store = dir
	}
	rep := &confReport{Exec: *execPath, Driver: *driver, Store: *store, Steps: []confStep{}}
	conformanceTour(rep, *flagsJSON, *heartbeat, *timeout)
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if rep.Fatal != "" {
		return 1
	}
	return 0
}

func conformanceTour(rep *confReport, flagsJSON string, hbInterval, timeout time.Duration) {
	p, err := StartPlugin(pluginConfig{Path: rep.Exec, DriverName: rep.Driver})
	if p != nil {
		defer func() {
			stdout, stderr, nOut, nErr, scanErrs := p.Output()
			rep.PluginStdout, rep.PluginStderrHead = stdout, stderr
			rep.PluginStdoutLines, rep.PluginStderrLines, rep.PluginScanErrors = nOut, nErr, scanErrs
		}()
		defer p.Kill()
	}
	if err != nil {
		rep.Fatal = err.Error()
		return
	}
	rep.Address = p.Addr
	rep.ExecToAddressMs = msBetween(p.Started, p.AddrAt)
	client, err := rpc.DialHTTP("tcp", p.Addr)
	if err != nil {
		rep.Fatal = err.Error()
		return
	}
	defer client.Close()
	t := &tour{rep: rep, client: client, timeout: timeout}

	// 1. Handshake as in NewRPCClientDriver, then the heartbeat goroutine.
	var version int
	t.call("GetVersion", t.v1("GetVersion"), struct{}{}, &version, func() interface{} { return version })
	hbStop := make(chan struct{})
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		for {
			select {
			case <-hbStop:
				return
			case <-time.After(hbInterval):
				if client.Call(t.v1("Heartbeat"), struct{}{}, nil) != nil {
					return
				}
				rep.BackgroundHeartbeats++
			}
		}
	}()
	stopHeartbeat := func() {
		select {
		case <-hbStop:
		default:
			close(hbStop)
			<-hbDone
		}
	}
	defer stopHeartbeat()

	bare, _ := json.Marshal(baseDriver{MachineName: "conf1", StorePath: rep.Store})
	t.call("SetConfigRaw", t.v1("SetConfigRaw"), bare, nil, nil)
	var name1, driverName string
	t.call("GetMachineName", t.v1("GetMachineName"), struct{}{}, &name1, func() interface{} { return name1 })
	t.call("DriverName", t.v1("DriverName"), struct{}{}, &driverName, func() interface{} { return driverName })

	// 2. Flags.
	var flags []mcnflag.Flag
	t.call("GetCreateFlags", t.v1("GetCreateFlags"), struct{}{}, &flags, func() interface{} { return reportFlags(flags) })
	rep.CreateFlags = reportFlags(flags)

	// 3. SetConfigFromFlags with docker-machine's map (driver given as -d).
	buildValues := func() (map[string]interface{}, error) {
		dflags, err := driverCliFlags(flags)
		if err != nil {
			return nil, err
		}
		fs := newFlagSet(append(append([]cliFlag{}, sharedCreateFlags...), dflags...))
		fs.values["driver"], fs.set["driver"] = rep.Driver, true
		values := driverOpts(flags, fs)
		return values, applyOverrides(values, fs, flagsJSON)
	}
	values, err := buildValues()
	if err != nil {
		rep.Fatal = err.Error()
		return
	}
	var opts interface{} = rpcdriver.RPCFlags{Values: values}
	err = t.call("SetConfigFromFlags", t.v1("SetConfigFromFlags"), &opts, nil, nil)
	rep.SetConfigFromFlags = &configFromFlagsReport{Entries: len(values), Values: values, Error: errPtr(err)}

	// 4. Driver JSON, and a round trip through the config.json form: the
	// "Driver" member as docker-machine reads it back from the file.
	var raw1 []byte
	if t.call("GetConfigRaw", t.v1("GetConfigRaw"), struct{}{}, &raw1, func() interface{} { return string(raw1) }) == nil {
		rt := &roundTripReport{}
		rep.ConfigRoundTrip = rt
		first, err := parseJSON(raw1)
		rep.ConfigRaw = first
		var indented bytes.Buffer
		if err == nil {
			err = json.Indent(&indented, raw1, "    ", "    ")
		}
		if err != nil {
			rt.Error = errPtr(fmt.Errorf("GetConfigRaw reply is not JSON: %s", err))
		} else {
			rt.Sent = indented.String()
			var raw2 []byte
			t.call("SetConfigRaw (config.json form)", t.v1("SetConfigRaw"), indented.Bytes(), nil, nil)
			if t.call("GetConfigRaw", t.v1("GetConfigRaw"), struct{}{}, &raw2, func() interface{} { return string(raw2) }) == nil {
				second, err := parseJSON(raw2)
				rt.Second, rt.Error = second, errPtr(err)
				rt.Equal = err == nil && reflect.DeepEqual(first, second)
			}
		}
	}

	// 5. Getters used by provisioning, and one heartbeat.
	var name2, user, keyPath string
	var port int
	t.call("GetMachineName", t.v1("GetMachineName"), struct{}{}, &name2, func() interface{} { return name2 })
	t.call("GetSSHPort", t.v1("GetSSHPort"), struct{}{}, &port, func() interface{} { return port })
	t.call("GetSSHUsername", t.v1("GetSSHUsername"), struct{}{}, &user, func() interface{} { return user })
	t.call("GetSSHKeyPath", t.v1("GetSSHKeyPath"), struct{}{}, &keyPath, func() interface{} { return keyPath })
	t.call("Heartbeat", t.v1("Heartbeat"), struct{}{}, nil, nil)

	// 5b. GitLab's fork's methods with the fork's Go types: TLSBootstrapRequested
	// (struct{} -> bool), SetTLSBootstrap (drivers.TLSBootstrap -> struct{}) with
	// material that is not PEM, UpdateLabels (map[string]string -> struct{})
	// with a label AWS reserves; neither of the last two reaches EC2.
	var requested bool
	t.call("TLSBootstrapRequested", t.v1("TLSBootstrapRequested"), struct{}{}, &requested, func() interface{} { return requested })
	junk := drivers.TLSBootstrap{CACert: []byte("ca"), ServerCert: []byte("cert"), ServerKey: []byte("key"), DaemonDropin: []byte("dropin")}
	t.call("SetTLSBootstrap", t.v1("SetTLSBootstrap"), junk, &struct{}{}, nil)
	t.call("UpdateLabels", t.v1("UpdateLabels"), map[string]string{"aws:reserved": "1"}, &struct{}{}, nil)

	// 6. Error cases; the connection must stay usable.
	t.call("RPCServerDriver.Upgrade", "RPCServerDriver.Upgrade", struct{}{}, nil, nil)
	var v0 int
	t.call("RpcServerDriver.GetVersion", "RpcServerDriver.GetVersion", struct{}{}, &v0, func() interface{} { return v0 })
	var v1 int
	t.call("NoSuchService.GetVersion", "NoSuchService.GetVersion", struct{}{}, &v1, func() interface{} { return v1 })
	var v2 int
	t.call("nodot", "nodot", struct{}{}, &v2, func() interface{} { return v2 })
	var v3 int
	t.call("RPCServerDriver.GetVersion (string argument)", "RPCServerDriver.GetVersion", "not a struct", &v3, func() interface{} { return v3 })
	var v4 int
	t.call("GetVersion", t.v1("GetVersion"), struct{}{}, &v4, func() interface{} { return v4 })

	// 7. A slow call (PreCreateCheck against an endpoint that never answers)
	// while heartbeats keep coming.
	if bh, err := newBlackhole(); err != nil {
		rep.Fatal = err.Error()
	} else {
		defer bh.close()
		slowCall(t, bh, buildValues)
	}

	// 8. Close, then the plugin must exit 0.
	stopHeartbeat()
	cr := &closeReport{}
	rep.Close = cr
	cr.Error = errPtr(t.call("Close", t.v1("Close"), struct{}{}, nil, nil))
	replied := time.Now()
	if p.WaitExit(10 * time.Second) {
		_, code, at := p.Exited()
		ms := msBetween(replied, at)
		cr.Exited, cr.ExitCode, cr.ExitAfterCloseReplyMs = true, &code, &ms
	}
}

func slowCall(t *tour, bh *blackhole, buildValues func() (map[string]interface{}, error)) {
	sr := &slowCallReport{Method: "PreCreateCheck", Endpoint: "http://" + bh.ln.Addr().String(), Heartbeats: []heartbeatSample{}}
	t.rep.SlowCall = sr
	values, err := buildValues()
	if err != nil {
		t.rep.Fatal = err.Error()
		return
	}
	values["amazonec2-endpoint"] = sr.Endpoint
	var opts interface{} = rpcdriver.RPCFlags{Values: values}
	t.call("SetConfigFromFlags (blackhole endpoint)", t.v1("SetConfigFromFlags"), &opts, nil, nil)

	start := time.Now()
	pending := t.client.Go(t.v1("PreCreateCheck"), struct{}{}, nil, make(chan *rpc.Call, 1))
	isPending := func() bool {
		if sr.FinishedAfterMs != nil {
			return false
		}
		select {
		case <-pending.Done:
			ms := msSince(start)
			sr.FinishedAfterMs, sr.FinishedError = &ms, errPtr(pending.Error)
			return false
		default:
			return true
		}
	}
	for i := 0; i < 5; i++ {
		time.Sleep(300 * time.Millisecond)
		hbStart := time.Now()
		hb := t.client.Go(t.v1("Heartbeat"), struct{}{}, nil, make(chan *rpc.Call, 1))
		var err error
		select {
		case <-hb.Done:
			err = hb.Error
		case <-time.After(t.timeout):
			err = fmt.Errorf("no reply within %s", t.timeout)
		}
		s := heartbeatSample{Ms: msSince(hbStart), Error: errPtr(err), SlowStillPending: isPending()}
		if s.Ms > sr.MaxHeartbeatMs {
			sr.MaxHeartbeatMs = s.Ms
		}
		sr.Heartbeats = append(sr.Heartbeats, s)
	}
	sr.StillPending = isPending()
	sr.BlackholeConnections = bh.count()
	t.rep.Steps = append(t.rep.Steps, confStep{
		Method: "PreCreateCheck (async, not awaited)",
		Reply:  map[string]bool{"still_pending": sr.StillPending},
		Error:  sr.FinishedError,
		Ms:     msSince(start),
	})
}
