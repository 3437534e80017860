//! The Go side of the vs_go bench: builds the stdlib-only baseline plugin (tests/go/baseline)
//! and a small Go net/rpc client (source below) that times round trips the way docker-machine
//! makes them. Both are built once into target/vs_go_baseline/ (skipped while newer than their
//! sources), each into a temporary file renamed into place.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn out_dir() -> PathBuf {
    ec2spot_testkit::goclient::target_dir().join("vs_go_baseline")
}

/// `go build` of the module in `src` into target/vs_go_baseline/<name>.
fn build(src: &Path, name: &str) -> PathBuf {
    ec2spot_testkit::goclient::go_build(src, &out_dir(), name)
}

/// The baseline plugin binary.
pub fn baseline() -> PathBuf {
    build(&repo_root().join("tests/go/baseline"), "baseline")
}

/// The Go round-trip client binary (its source is written under target/ first).
pub fn rtclient() -> PathBuf {
    let src = out_dir().join("rtclient-src");
    std::fs::create_dir_all(&src).expect("create rtclient-src");
    for (file, text) in [("go.mod", RTCLIENT_GO_MOD), ("main.go", RTCLIENT_MAIN)] {
        let path = src.join(file);
        // Rewritten only when changed, so its mtime says when the source last changed.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).expect("write rtclient source");
        }
    }
    build(&src, "rtclient")
}

const RTCLIENT_GO_MOD: &str = "module rtclient\n\ngo 1.19\n";

/// rtclient: starts each plugin as docker-machine does, dials it with Go's net/rpc
/// (rpc.DialHTTP), heartbeats it every 5 s, and times `RPCServerDriver.GetVersion` calls:
/// `rounds` rounds of `n` calls per plugin, plugins interleaved in rotating order. Prints JSON.
const RTCLIENT_MAIN: &str = r#"package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"time"
)

type result struct {
	Path     string    `json:"path"`
	TotalsMs []float64 `json:"totals_ms"`
	CallsUs  []float64 `json:"calls_us"`
}

type plugin struct {
	cmd    *exec.Cmd
	client *rpc.Client
}

func start(path string) (*plugin, error) {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "MACHINE_PLUGIN_TOKEN=42", "MACHINE_PLUGIN_DRIVER_NAME=vs_go")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s: no address: %v", path, err)
	}
	go io.Copy(io.Discard, r)
	c, err := rpc.DialHTTP("tcp", strings.TrimSpace(line))
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	go func() {
		for {
			time.Sleep(5 * time.Second)
			if c.Call("RPCServerDriver.Heartbeat", struct{}{}, nil) != nil {
				return
			}
		}
	}()
	return &plugin{cmd: cmd, client: c}, nil
}

func main() {
	n := flag.Int("n", 1000, "calls per round")
	rounds := flag.Int("rounds", 3, "rounds per plugin")
	warm := flag.Int("warm", 50, "untimed calls first")
	flag.Parse()
	var plugins []*plugin
	results := make([]result, flag.NArg())
	for i, path := range flag.Args() {
		p, err := start(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		plugins = append(plugins, p)
		results[i].Path = path
	}
	call := func(p *plugin) {
		var v int
		if err := p.client.Call("RPCServerDriver.GetVersion", struct{}{}, &v); err != nil || v != 1 {
			fmt.Fprintln(os.Stderr, "GetVersion:", v, err)
			os.Exit(1)
		}
	}
	for _, p := range plugins {
		for i := 0; i < *warm; i++ {
			call(p)
		}
	}
	for round := 0; round < *rounds; round++ {
		for k := range plugins {
			i := (k + round) % len(plugins)
			p, r := plugins[i], &results[i]
			t0 := time.Now()
			for j := 0; j < *n; j++ {
				t := time.Now()
				call(p)
				r.CallsUs = append(r.CallsUs, float64(time.Since(t).Nanoseconds())/1000)
			}
			r.TotalsMs = append(r.TotalsMs, float64(time.Since(t0).Nanoseconds())/1e6)
		}
	}
	for _, p := range plugins {
		p.client.Call("RPCServerDriver.Close", struct{}{}, nil)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"plugins": results})
}
"#;
