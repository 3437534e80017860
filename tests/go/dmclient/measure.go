package main

// `dmclient watchdog` and `dmclient startup`: timing measurements of the
// plugin's process lifecycle (PROTOCOL.md 1.2 and 1.6).

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/rpc"
	"os"
	"sort"
	"time"
)

type watchdogReport struct {
	Exec             string   `json:"exec"`
	Orphan           bool     `json:"orphan"`
	Fatal            string   `json:"fatal,omitempty"`
	ExecToAddressMs  float64  `json:"exec_to_address_ms"`
	GetVersion       *int     `json:"get_version"`
	GetVersionError  *string  `json:"get_version_error"`
	Exited           bool     `json:"exited"`
	ExitCode         *int     `json:"exit_code"`
	ExitAfterAddress *float64 `json:"exit_after_address_s"`
	PluginStderrHead []string `json:"plugin_stderr_head"`
}

// runWatchdog connects, calls GetVersion and then sends no heartbeat: the
// plugin must exit 1 about 10 s after printing its address. With -orphan
// the client then goes away as a docker-machine that exits after an error
// does: it closes the connection and its ends of the output pipes.
func runWatchdog(args []string) int {
	fl := flag.NewFlagSet("watchdog", flag.ContinueOnError)
	execPath := fl.String("exec", "", "plugin binary to start (required)")
	driver := fl.String("driver", "ec2spot", "driver name given to the plugin")
	wait := fl.Duration("timeout", 30*time.Second, "how long to wait for the plugin to exit before killing it")
	orphan := fl.Bool("orphan", false, "after GetVersion, close the connection and the plugin's output pipes")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *execPath == "" {
		fmt.Fprintln(os.Stderr, "watchdog: -exec is required")
		return 2
	}
	rep := &watchdogReport{Exec: *execPath, Orphan: *orphan}
	func() {
		p, err := StartPlugin(pluginConfig{Path: *execPath, DriverName: *driver})
		if p != nil {
			defer func() { _, rep.PluginStderrHead, _, _, _ = p.Output() }()
			defer p.Kill()
		}
		if err != nil {
			rep.Fatal = err.Error()
			return
		}
		rep.ExecToAddressMs = msBetween(p.Started, p.AddrAt)
		client, err := rpc.DialHTTP("tcp", p.Addr)
		if err != nil {
			rep.Fatal = err.Error()
			return
		}
		defer client.Close()
		var v int
		if err := client.Call(serviceV1+".GetVersion", struct{}{}, &v); err != nil {
			rep.GetVersionError = errPtr(err)
		} else {
			rep.GetVersion = &v
		}
		if *orphan {
			// Give the plugin something to write once its pipes are gone.
			client.Call(serviceV1+".NoSuchMethod", struct{}{}, nil)
			client.Close()
			p.CloseOutput()
		}
		if p.WaitExit(*wait) {
			_, code, at := p.Exited()
			s := at.Sub(p.AddrAt).Seconds()
			rep.Exited, rep.ExitCode, rep.ExitAfterAddress = true, &code, &s
		}
	}()
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if rep.Fatal != "" {
		return 1
	}
	return 0
}

type startupReport struct {
	Exec      string    `json:"exec"`
	Runs      int       `json:"runs"`
	Failures  []string  `json:"failures"`
	SamplesMs []float64 `json:"samples_ms"`
	P50Ms     float64   `json:"p50_ms"`
	P90Ms     float64   `json:"p90_ms"`
	MeanMs    float64   `json:"mean_ms"`
	MinMs     float64   `json:"min_ms"`
	MaxMs     float64   `json:"max_ms"`
	ExitCodes []int     `json:"exit_codes"`
}

// runStartup measures exec -> address line over n starts; each plugin is
// then connected, asked GetVersion and closed with Close.
func runStartup(args []string) int {
	fl := flag.NewFlagSet("startup", flag.ContinueOnError)
	execPath := fl.String("exec", "", "plugin binary to start (required)")
	driver := fl.String("driver", "ec2spot", "driver name given to the plugin")
	n := fl.Int("n", 50, "number of starts")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *execPath == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "startup: -exec is required and -n must be positive")
		return 2
	}
	rep := &startupReport{Exec: *execPath, Runs: *n, Failures: []string{}, SamplesMs: []float64{}, ExitCodes: []int{}}
	for i := 0; i < *n; i++ {
		ms, code, err := startOnce(*execPath, *driver)
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("run %d: %s", i, err))
			continue
		}
		rep.SamplesMs = append(rep.SamplesMs, ms)
		rep.ExitCodes = append(rep.ExitCodes, code)
	}
	if len(rep.SamplesMs) > 0 {
		sorted := append([]float64{}, rep.SamplesMs...)
		sort.Float64s(sorted)
		sum := 0.0
		for _, v := range sorted {
			sum += v
		}
		rep.MeanMs = sum / float64(len(sorted))
		rep.MinMs, rep.MaxMs = sorted[0], sorted[len(sorted)-1]
		rep.P50Ms = sorted[(len(sorted)-1)/2]
		rep.P90Ms = sorted[(len(sorted)-1)*9/10]
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if len(rep.Failures) > 0 {
		return 1
	}
	return 0
}

func startOnce(execPath, driver string) (float64, int, error) {
	p, err := StartPlugin(pluginConfig{Path: execPath, DriverName: driver})
	if p != nil {
		defer p.Kill()
	}
	if err != nil {
		return 0, 0, err
	}
	ms := msBetween(p.Started, p.AddrAt)
	client, err := rpc.DialHTTP("tcp", p.Addr)
	if err != nil {
		return ms, 0, err
	}
	defer client.Close()
	var v int
	if err := client.Call(serviceV1+".GetVersion", struct{}{}, &v); err != nil {
		return ms, 0, err
	}
	client.Call(serviceV1+".Close", struct{}{}, nil)
	if !p.WaitExit(5 * time.Second) {
		return ms, 0, fmt.Errorf("plugin still running 5 s after Close")
	}
	_, code, _ := p.Exited()
	return ms, code, nil
}
