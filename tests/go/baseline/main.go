// Command baseline is a minimal docker-machine driver plugin written with the
// Go standard library only (net/rpc + encoding/gob over HTTP CONNECT), used
// by benches/vs_go.rs as the reference ec2spot is compared against.
//
// Its lifecycle is docker-machine's plugin server
// (libmachine/drivers/plugin/register_driver.go): refuse to run without
// MACHINE_PLUGIN_TOKEN=42, listen on 127.0.0.1:0, print the address as the
// first stdout line, serve net/rpc over HTTP, exit 1 after 10 s without a
// Heartbeat and exit 0 after Close.
//
// Its EC2 work is a stdlib client of EC2's Query API (form POST, XML answers)
// meant for moto: requests carry a fixed, unsigned Authorization header whose
// credential scope names the region. It is not aws-sdk-go, but it makes
// amazonec2's calls in amazonec2's order (../shared/reference/AMAZONEC2.md
// §2.1-2.3): DescribeAccountAttributes in SetConfigFromFlags; DescribeKeyPairs
// and DescribeSubnets in PreCreateCheck and again in Create; an RSA-2048 key,
// ImportKeyPair, DescribeSecurityGroups (CreateSecurityGroup and
// AuthorizeSecurityGroupIngress when missing), RunInstances, DescribeInstances
// until it has an address and again until it runs (3 s apart, as amazonec2),
// CreateTags. Remove terminates and deletes the key pair.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/rpc"
	"net/url"
	"os"
	"strings"
	"time"
)

const (
	heartbeatTimeout = 10 * time.Second
	dockerPort       = 2376
	ec2APIVersion    = "2016-11-15"
)

// Flag is one create flag (docker-machine's mcnflag.Flag).
type Flag interface{ flagName() string }

// StringFlag travels as "*mcnflag.StringFlag".
type StringFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  string
}

func (f *StringFlag) flagName() string { return f.Name }

// RPCFlags is docker-machine's rpcdriver.RPCFlags (SetConfigFromFlags).
type RPCFlags struct {
	Values map[string]interface{}
}

func init() {
	gob.RegisterName("*mcnflag.StringFlag", &StringFlag{})
	gob.RegisterName("*rpcdriver.RPCFlags", &RPCFlags{})
}

// Config is the driver JSON (docker-machine's BaseDriver keys plus a few of
// amazonec2's).
type Config struct {
	IPAddress      string
	MachineName    string
	SSHUser        string
	SSHPort        int
	SSHKeyPath     string
	StorePath      string
	SwarmMaster    bool
	SwarmHost      string
	SwarmDiscovery string
	Region         string
	AMI            string
	InstanceId     string
	InstanceType   string
	VpcId          string
	SubnetId       string
	KeyName        string
	SecurityGroup  string
	Zone           string
}

// RPCServerDriver answers docker-machine's driver methods.
type RPCServerDriver struct {
	cfg         Config
	closeCh     chan struct{}
	heartbeatCh chan struct{}
}

func (r *RPCServerDriver) GetVersion(_ *struct{}, reply *int) error {
	*reply = 1
	return nil
}

func (r *RPCServerDriver) Heartbeat(_ *struct{}, _ *struct{}) error {
	r.heartbeatCh <- struct{}{}
	return nil
}

func (r *RPCServerDriver) Close(_ *struct{}, _ *struct{}) error {
	r.closeCh <- struct{}{}
	return nil
}

func (r *RPCServerDriver) DriverName(_ *struct{}, reply *string) error {
	*reply = "baseline"
	return nil
}

func (r *RPCServerDriver) GetMachineName(_ *struct{}, reply *string) error {
	*reply = r.cfg.MachineName
	return nil
}

func (r *RPCServerDriver) SetConfigRaw(data []byte, _ *struct{}) error {
	return json.Unmarshal(data, &r.cfg)
}

func (r *RPCServerDriver) GetConfigRaw(_ *struct{}, reply *[]byte) error {
	b, err := json.Marshal(&r.cfg)
	*reply = b
	return err
}

func (r *RPCServerDriver) GetCreateFlags(_ *struct{}, reply *[]Flag) error {
	*reply = []Flag{
		&StringFlag{Name: "amazonec2-ami", Usage: "AWS machine image", EnvVar: "AWS_AMI"},
		&StringFlag{Name: "amazonec2-instance-type", Usage: "AWS instance type", EnvVar: "AWS_INSTANCE_TYPE", Value: "t3.micro"},
		&StringFlag{Name: "amazonec2-region", Usage: "AWS region", EnvVar: "AWS_DEFAULT_REGION", Value: "us-east-1"},
	}
	return nil
}

func (r *RPCServerDriver) SetConfigFromFlags(v *interface{}, _ *struct{}) error {
	flags, ok := (*v).(*RPCFlags)
	if !ok {
		return fmt.Errorf("SetConfigFromFlags: unexpected %T", *v)
	}
	str := func(k string) string { s, _ := flags.Values[k].(string); return s }
	r.cfg.AMI = str("amazonec2-ami")
	r.cfg.InstanceType = str("amazonec2-instance-type")
	r.cfg.Region = str("amazonec2-region")
	if r.cfg.InstanceType == "" {
		r.cfg.InstanceType = "t3.micro"
	}
	if r.cfg.Region == "" {
		r.cfg.Region = "us-east-1"
	}
	r.cfg.Zone = "a"
	r.cfg.SecurityGroup = "docker-machine"
	// amazonec2: without a VPC id, the account's default VPC.
	var attrs struct {
		Items []struct {
			Name   string   `xml:"attributeName"`
			Values []string `xml:"attributeValueSet>item>attributeValue"`
		} `xml:"accountAttributeSet>item"`
	}
	if err := r.ec2(url.Values{"Action": {"DescribeAccountAttributes"}, "AttributeName.1": {"default-vpc"}}, &attrs); err != nil {
		return err
	}
	for _, a := range attrs.Items {
		if a.Name == "default-vpc" && len(a.Values) > 0 {
			r.cfg.VpcId = a.Values[0]
		}
	}
	// moto answers "none" where EC2 names the default VPC: the bench then
	// hands over the id EC2 would have named.
	if r.cfg.VpcId == "none" || r.cfg.VpcId == "" {
		r.cfg.VpcId = os.Getenv("BASELINE_DEFAULT_VPC")
	}
	return nil
}

// checkPrereqs is amazonec2's pre-create check: the key pair must not exist
// yet, and the zone's subnet in the VPC is looked up.
func (r *RPCServerDriver) checkPrereqs() error {
	if r.cfg.AMI == "" {
		return errors.New("amazonec2-ami is required")
	}
	var keys struct {
		Names []string `xml:"keySet>item>keyName"`
	}
	err := r.ec2(url.Values{"Action": {"DescribeKeyPairs"}, "KeyName.1": {r.cfg.MachineName}}, &keys)
	if err == nil && len(keys.Names) > 0 {
		return fmt.Errorf("There is already a keypair with the name %s", r.cfg.MachineName)
	}
	var subnets struct {
		Items []struct {
			ID      string `xml:"subnetId"`
			Default bool   `xml:"defaultForAz"`
		} `xml:"subnetSet>item"`
	}
	if err := r.ec2(url.Values{
		"Action":           {"DescribeSubnets"},
		"Filter.1.Name":    {"availability-zone"},
		"Filter.1.Value.1": {r.cfg.Region + r.cfg.Zone},
		"Filter.2.Name":    {"vpc-id"},
		"Filter.2.Value.1": {r.cfg.VpcId},
	}, &subnets); err != nil {
		return err
	}
	if len(subnets.Items) == 0 {
		return fmt.Errorf("unable to find a subnet in the zone %s%s", r.cfg.Region, r.cfg.Zone)
	}
	r.cfg.SubnetId = subnets.Items[0].ID
	for _, s := range subnets.Items {
		if s.Default {
			r.cfg.SubnetId = s.ID
		}
	}
	return nil
}

func (r *RPCServerDriver) PreCreateCheck(_ *struct{}, _ *struct{}) error {
	return r.checkPrereqs()
}

// sshPublicKey is the OpenSSH "ssh-rsa" line of k (RFC 4253 §6.6).
func sshPublicKey(k *rsa.PublicKey) string {
	var b []byte
	put := func(p []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		b = append(b, n[:]...)
		b = append(b, p...)
	}
	mpint := func(i *big.Int) []byte {
		p := i.Bytes()
		if len(p) > 0 && p[0]&0x80 != 0 {
			p = append([]byte{0}, p...)
		}
		return p
	}
	put([]byte("ssh-rsa"))
	put(mpint(big.NewInt(int64(k.E))))
	put(mpint(k.N))
	return "ssh-rsa " + base64.StdEncoding.EncodeToString(b)
}

func (r *RPCServerDriver) Create(_ *struct{}, _ *struct{}) error {
	if err := r.checkPrereqs(); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := r.ec2(url.Values{
		"Action":            {"ImportKeyPair"},
		"KeyName":           {r.cfg.MachineName},
		"PublicKeyMaterial": {base64.StdEncoding.EncodeToString([]byte(sshPublicKey(&key.PublicKey)))},
	}, nil); err != nil {
		return err
	}
	r.cfg.KeyName = r.cfg.MachineName
	groupID, err := r.ensureGroup()
	if err != nil {
		return err
	}
	var run runInstancesResponse
	// A key pair imported moments ago may be unknown to the launch (EC2's eventual
	// consistency): amazonec2 would fail here; the baseline tries again at amazonec2's own
	// polling cadence (every 3 s), so the comparison has a create to compare with.
	launch := func() error {
		return r.ec2(url.Values{
			"Action":                               {"RunInstances"},
			"ImageId":                              {r.cfg.AMI},
			"MinCount":                             {"1"},
			"MaxCount":                             {"1"},
			"InstanceType":                         {r.cfg.InstanceType},
			"KeyName":                              {r.cfg.KeyName},
			"Placement.AvailabilityZone":           {r.cfg.Region + r.cfg.Zone},
			"NetworkInterface.1.DeviceIndex":       {"0"},
			"NetworkInterface.1.SubnetId":          {r.cfg.SubnetId},
			"NetworkInterface.1.SecurityGroupId.1": {groupID},
			"NetworkInterface.1.AssociatePublicIpAddress": {"true"},
		}, &run)
	}
	err = launch()
	for try := 0; err != nil && strings.Contains(err.Error(), ".NotFound") && try < 60; try++ {
		time.Sleep(3 * time.Second)
		err = launch()
	}
	if err != nil {
		return err
	}
	if len(run.Instances) != 1 {
		return fmt.Errorf("RunInstances launched %d instances", len(run.Instances))
	}
	r.cfg.InstanceId = run.Instances[0].InstanceID
	// amazonec2: wait for an IP, then for running (mcnutils.WaitFor: at once,
	// then every 3 s, 60 times).
	for _, done := range []func(instance) bool{
		func(i instance) bool { return i.IPAddress != "" },
		func(i instance) bool { return i.State.Name == "running" },
	} {
		ok := false
		for try := 0; try < 60 && !ok; try++ {
			if try > 0 {
				time.Sleep(3 * time.Second)
			}
			inst, err := r.describe()
			if err != nil {
				continue
			}
			r.cfg.IPAddress = inst.IPAddress
			ok = done(inst)
		}
		if !ok {
			return fmt.Errorf("instance %s did not come up", r.cfg.InstanceId)
		}
	}
	return r.ec2(url.Values{
		"Action":       {"CreateTags"},
		"ResourceId.1": {r.cfg.InstanceId},
		"Tag.1.Key":    {"Name"},
		"Tag.1.Value":  {r.cfg.MachineName},
	}, nil)
}

// ensureGroup is amazonec2's configureSecurityGroupPermissions: the group by
// name in the VPC (made when missing), with SSH and Docker let in.
func (r *RPCServerDriver) ensureGroup() (string, error) {
	var groups struct {
		Items []struct {
			ID    string `xml:"groupId"`
			Ports []int  `xml:"ipPermissions>item>fromPort"`
		} `xml:"securityGroupInfo>item"`
	}
	if err := r.ec2(url.Values{
		"Action":           {"DescribeSecurityGroups"},
		"Filter.1.Name":    {"group-name"},
		"Filter.1.Value.1": {r.cfg.SecurityGroup},
		"Filter.2.Name":    {"vpc-id"},
		"Filter.2.Value.1": {r.cfg.VpcId},
	}, &groups); err != nil {
		return "", err
	}
	var id string
	var ports []int
	if len(groups.Items) > 0 {
		id, ports = groups.Items[0].ID, groups.Items[0].Ports
	} else {
		var made struct {
			ID string `xml:"groupId"`
		}
		if err := r.ec2(url.Values{
			"Action":           {"CreateSecurityGroup"},
			"GroupName":        {r.cfg.SecurityGroup},
			"GroupDescription": {"Docker Machine"},
			"VpcId":            {r.cfg.VpcId},
		}, &made); err != nil {
			return "", err
		}
		id = made.ID
		// amazonec2 waits for its new group until EC2 lists it (mcnutils.WaitFor: at once,
		// then every 3 s, 60 times) — EC2's reads are eventually consistent.
		var err error
		for try := 0; try < 60; try++ {
			if try > 0 {
				time.Sleep(3 * time.Second)
			}
			if err = r.ec2(url.Values{"Action": {"DescribeSecurityGroups"}, "GroupId.1": {id}}, nil); err == nil {
				break
			}
		}
		if err != nil {
			return "", err
		}
	}
	form := url.Values{"Action": {"AuthorizeSecurityGroupIngress"}, "GroupId": {id}}
	n := 0
	for _, port := range []int{22, dockerPort} {
		have := false
		for _, p := range ports {
			have = have || p == port
		}
		if have {
			continue
		}
		n++
		k := fmt.Sprintf("IpPermissions.%d.", n)
		form.Set(k+"IpProtocol", "tcp")
		form.Set(k+"FromPort", fmt.Sprint(port))
		form.Set(k+"ToPort", fmt.Sprint(port))
		form.Set(k+"IpRanges.1.CidrIp", "0.0.0.0/0")
	}
	if n > 0 {
		if err := r.ec2(form, nil); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (r *RPCServerDriver) Remove(_ *struct{}, _ *struct{}) error {
	if r.cfg.InstanceId != "" {
		if err := r.ec2(url.Values{"Action": {"TerminateInstances"}, "InstanceId.1": {r.cfg.InstanceId}}, nil); err != nil {
			return err
		}
	}
	if r.cfg.KeyName != "" {
		return r.ec2(url.Values{"Action": {"DeleteKeyPair"}, "KeyName": {r.cfg.KeyName}}, nil)
	}
	return nil
}

// GetURL asks EC2 for the instance, as amazonec2 does (one DescribeInstances
// here where amazonec2 makes two).
func (r *RPCServerDriver) GetURL(_ *struct{}, reply *string) error {
	inst, err := r.describe()
	if err != nil {
		return err
	}
	if inst.State.Name != "running" {
		return errors.New("Host is not running")
	}
	ip := inst.IPAddress
	if ip == "" {
		ip = r.cfg.IPAddress
	}
	if ip == "" {
		*reply = ""
		return nil
	}
	*reply = fmt.Sprintf("tcp://%s", net.JoinHostPort(ip, fmt.Sprint(dockerPort)))
	return nil
}

func (r *RPCServerDriver) GetIP(_ *struct{}, reply *string) error {
	if r.cfg.IPAddress != "" {
		*reply = r.cfg.IPAddress
		return nil
	}
	inst, err := r.describe()
	if err != nil {
		return err
	}
	*reply = inst.IPAddress
	return nil
}

func (r *RPCServerDriver) GetState(_ *struct{}, reply *int) error {
	inst, err := r.describe()
	if err != nil {
		*reply = 7 // Error
		return err
	}
	switch inst.State.Name {
	case "running":
		*reply = 1
	case "pending":
		*reply = 6
	case "stopping", "shutting-down":
		*reply = 5
	case "stopped", "terminated":
		*reply = 4
	default:
		*reply = 0
	}
	return nil
}

func (r *RPCServerDriver) GetSSHHostname(_ *struct{}, reply *string) error {
	return r.GetIP(nil, reply)
}

func (r *RPCServerDriver) GetSSHPort(_ *struct{}, reply *int) error {
	*reply = r.cfg.SSHPort
	if *reply == 0 {
		*reply = 22
	}
	return nil
}

func (r *RPCServerDriver) GetSSHUsername(_ *struct{}, reply *string) error {
	*reply = r.cfg.SSHUser
	if *reply == "" {
		*reply = "ubuntu"
	}
	return nil
}

func (r *RPCServerDriver) GetSSHKeyPath(_ *struct{}, reply *string) error {
	*reply = r.cfg.SSHKeyPath
	return nil
}

func (r *RPCServerDriver) instanceAction(action string, extra url.Values) error {
	if r.cfg.InstanceId == "" {
		return errors.New("no instance")
	}
	form := url.Values{"Action": {action}, "InstanceId.1": {r.cfg.InstanceId}}
	for k, v := range extra {
		form[k] = v
	}
	return r.ec2(form, nil)
}

func (r *RPCServerDriver) Start(_ *struct{}, _ *struct{}) error {
	return r.instanceAction("StartInstances", nil)
}

func (r *RPCServerDriver) Stop(_ *struct{}, _ *struct{}) error {
	return r.instanceAction("StopInstances", nil)
}

func (r *RPCServerDriver) Restart(_ *struct{}, _ *struct{}) error {
	return r.instanceAction("RebootInstances", nil)
}

func (r *RPCServerDriver) Kill(_ *struct{}, _ *struct{}) error {
	return r.instanceAction("StopInstances", url.Values{"Force": {"true"}})
}

// --- a minimal EC2 Query API client ---

type instance struct {
	InstanceID string `xml:"instanceId"`
	IPAddress  string `xml:"ipAddress"`
	State      struct {
		Name string `xml:"name"`
	} `xml:"instanceState"`
}

type runInstancesResponse struct {
	Instances []instance `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	Reservations []struct {
		Instances []instance `xml:"instancesSet>item"`
	} `xml:"reservationSet>item"`
}

type ec2Error struct {
	Errors []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func (r *RPCServerDriver) ec2(form url.Values, out interface{}) error {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return errors.New("baseline: AWS_ENDPOINT_URL is not set (this client only talks to moto)")
	}
	region := r.cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	form.Set("Version", ec2APIVersion)
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(endpoint, "/")+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/"+region+
		"/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e ec2Error
		if xml.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
			return fmt.Errorf("%s: %s", e.Errors[0].Code, e.Errors[0].Message)
		}
		return fmt.Errorf("%s: HTTP %d", form.Get("Action"), resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return xml.Unmarshal(body, out)
}

func (r *RPCServerDriver) describe() (instance, error) {
	if r.cfg.InstanceId == "" {
		return instance{}, errors.New("no instance")
	}
	var out describeInstancesResponse
	if err := r.ec2(url.Values{"Action": {"DescribeInstances"}, "InstanceId.1": {r.cfg.InstanceId}}, &out); err != nil {
		return instance{}, err
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if i.InstanceID == r.cfg.InstanceId {
				return i, nil
			}
		}
	}
	return instance{}, fmt.Errorf("instance %s not found", r.cfg.InstanceId)
}

// --- docker-machine's plugin server ---

func main() {
	if os.Getenv("MACHINE_PLUGIN_TOKEN") != "42" {
		fmt.Fprint(os.Stderr, `This is a Docker Machine plugin binary.
Plugin binaries are not intended to be invoked directly.
Please use this plugin through the main 'docker-machine' binary.
(API version: 1)
`)
		os.Exit(1)
	}
	os.Setenv("MACHINE_DEBUG", "1")

	rpcd := &RPCServerDriver{closeCh: make(chan struct{}), heartbeatCh: make(chan struct{})}
	if err := rpc.RegisterName("RPCServerDriver", rpcd); err != nil {
		fmt.Fprintf(os.Stderr, "Error registering RPC server: %s\n", err)
		os.Exit(1)
	}
	if err := rpc.RegisterName("RpcServerDriver", rpcd); err != nil {
		fmt.Fprintf(os.Stderr, "Error registering RPC server: %s\n", err)
		os.Exit(1)
	}
	rpc.HandleHTTP()

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error loading RPC server: %s\n", err)
		os.Exit(1)
	}
	defer listener.Close()

	fmt.Println(listener.Addr())

	go http.Serve(listener, nil)

	for {
		select {
		case <-rpcd.closeCh:
			fmt.Fprintln(os.Stderr, "Closing plugin on server side")
			os.Exit(0)
		case <-rpcd.heartbeatCh:
			continue
		case <-time.After(heartbeatTimeout):
			os.Exit(1)
		}
	}
}
