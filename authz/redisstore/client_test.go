package redisstore

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	const sentinel = "redis://:pw@s1:26379/0?master_name=m&addr=s2:26379&addr=s3:26379"
	for _, tc := range []struct {
		url     string
		want    Topology
		addrs   int
		wantErr string
	}{
		{url: "redis://:pw@127.0.0.1:6379/0", want: Standalone, addrs: 1},
		{url: sentinel, want: Sentinel, addrs: 3},
		{url: "redis://n1:6379?addr=n2:6379", want: Cluster, addrs: 2},
		{url: "redis://n1:6379?cluster=true", want: Cluster, addrs: 1},
		{url: sentinel + "&replica_only=true", wantErr: "replica_only is not supported"},
		{url: sentinel + "&route_by_latency=true", wantErr: "route_by_latency is not supported"},
		{url: sentinel + "&route_randomly=true", wantErr: "route_randomly is not supported"},
		{url: "http://:pw@h:6379", wantErr: "must start with redis://"},
		{url: "redis://:pw@h:6379/0?bogus=1", wantErr: "bogus"},
	} {
		u, err := ParseURL(tc.url)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: %v; want an error with %q and no password", tc.url, err, tc.wantErr)
			}
			continue
		}
		if err != nil || u.Topology != tc.want || len(u.Addrs()) != tc.addrs {
			t.Errorf("%s: %v %v; want %s with %d addresses", tc.url, u, err, tc.want, tc.addrs)
		}
	}
}

// TestSentinelDialTimeout: a Sentinel URL bounds dialing a dead primary at
// 2 s unless it says otherwise.
func TestSentinelDialTimeout(t *testing.T) {
	u, err := ParseURL("redis://s1:26379/0?master_name=m")
	if err != nil || u.failover.DialTimeout != sentinelDialTimeout {
		t.Fatalf("default: %v %v", u.failover.DialTimeout, err)
	}
	u, err = ParseURL("redis://s1:26379/0?master_name=m&dial_timeout=7s")
	if err != nil || u.failover.DialTimeout != 7*time.Second {
		t.Fatalf("explicit: %v %v", u.failover.DialTimeout, err)
	}
}

// FuzzParseURL: any string parses or fails with an error; none panics or
// quotes the password it was given.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://:secretpw@h:6379/0",
		"redis://:secretpw@s1:26379/0?master_name=m&addr=s2:26379&route_by_latency=true",
		"rediss://u:secretpw@n1:6379?addr=n2:6379&pool_size=3",
		"redis://:secretpw@n1:6379?cluster=true&dial_timeout=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			// The password, when it appears nowhere else in the URL, must
			// not appear in the error.
			if pu, perr := url.Parse(s); perr == nil && pu.User != nil {
				pw, _ := pu.User.Password()
				// The message's own text may hold the password's letters
				// ("redi" of "redis://"): it leaks only if the same URL with
				// another password gives a message holding them fewer times.
				other := *pu
				other.User = url.UserPassword(pu.User.Username(), "Pw-sentinel-7")
				_, oerr := ParseURL(other.String())
				quoted := strings.Count(err.Error(), pw)
				if oerr != nil {
					quoted -= strings.Count(oerr.Error(), pw)
				}
				pu.User = nil
				if len(pw) >= 4 && !strings.Contains(pu.String(), pw) && !strings.Contains(pu.RawQuery, pw) && quoted > 0 {
					t.Fatalf("error quotes the password: %v", err)
				}
			}
			return
		}
		c := u.NewClient()
		_ = c.Close()
	})
}
