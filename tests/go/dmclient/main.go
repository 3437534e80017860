// Command dmclient is a stand-in for docker-machine, the Go program that loads
// driver plugins such as docker-machine-driver-ec2spot. The real
// docker-machine binary is not available here; dmclient reproduces what it
// does on the plugin protocol (shared/wire/PROTOCOL.md), written from
// scratch with the Go standard library only.
//
// Roles:
//
//	dmclient conformance -exec PLUGIN [-driver ec2spot] [-store DIR] [-flags JSON]
//	    scripted tour of the RPC protocol, one JSON report on stdout
//	dmclient watchdog -exec PLUGIN      no heartbeat: when does the plugin exit?
//	dmclient startup -exec PLUGIN -n 50 exec -> address line latency
//	dmclient dm [GLOBAL OPTIONS] COMMAND ...
//	    mini docker-machine: create, ls, status, ip, url, inspect, config,
//	    stop, kill, start, restart, rm, version
//
// Build (offline: a module without requirements, standard library only):
//
//	cd tests/go/dmclient && CGO_ENABLED=0 GO111MODULE=on GOFLAGS=-mod=mod GOPROXY=off \
//	    go build -o ../../../target/dmclient/dmclient .
//
// The gob type names must be exactly *rpcdriver.RPCFlags and
// *mcnflag.{String,Int,Bool,StringSlice}Flag, which is why those types live
// in the local packages dmclient/rpcdriver and dmclient/mcnflag (gob names
// a registered pointer type after the package name, not its path).
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  dmclient conformance -exec PLUGIN [-driver NAME] [-store DIR] [-flags JSON] [-heartbeat 5s]
  dmclient watchdog -exec PLUGIN [-driver NAME] [-timeout 30s]
  dmclient startup -exec PLUGIN [-driver NAME] [-n 50]
  dmclient dm [--storage-path DIR] [--debug] [--poll 3s] COMMAND [ARGS...]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "conformance":
		os.Exit(runConformance(args))
	case "watchdog":
		os.Exit(runWatchdog(args))
	case "startup":
		os.Exit(runStartup(args))
	case "dm":
		os.Exit(runDM(args))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}
